"""The admin page in Chromium against a live server: an admin logs in, creates an editor, and finds the entry
of that in the audit log; the new editor can log in elsewhere but the admin page turns them away."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from accounts_helpers import PASSWORD
from browser import browser_page, log_in

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000


def test_admin_creates_an_editor_and_sees_the_audit_entry(browser: Any, live_server: Any, runtime: Any) -> None:
    from playwright.sync_api import expect

    editor = "bj" + uuid.uuid4().hex[:6]
    with browser_page(browser, timeout_ms=TIMEOUT_MS, locale="zh-CN") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, f"{live_server.url}/admin", "admin2", PASSWORD)
        expect(page.locator("#main")).to_be_visible()
        expect(page.locator("#me-name")).to_contain_text("管理员")
        expect(page.locator("#users-body tr[data-username='admin1']")).to_be_visible()

        page.fill("#new-username", editor)
        page.fill("#new-name", "白编辑")
        page.select_option("#new-role", "editor")
        page.fill("#new-password", "editor long password")
        page.click("#create-btn")
        expect(page.locator("#status")).to_contain_text(f"已创建账号 {editor}")
        row = page.locator(f"#users-body tr[data-username='{editor}']")
        expect(row.locator("td.role")).to_contain_text("editor")
        expect(row.locator("td.state")).to_have_text("启用")

        page.click("#tab-audit")
        page.fill("#f-action", "user.create")
        page.click("#audit-search")
        first = page.locator("#audit-body tr").first
        expect(first).to_contain_text(editor)
        expect(first.locator("td.action")).to_have_text("user.create")
        expect(first).to_contain_text("admin2")
        expect(page.locator("#page-info")).to_contain_text("共")
        # the password typed for the editor is nowhere on the page
        assert "editor long password" not in page.content()

        # logging out ends the session; the new editor may log in, but this page is for admins
        page.click("#logout-btn")
        expect(page.locator("#login")).to_be_visible()
        page.fill("#username", editor)
        page.fill("#password", "editor long password")
        page.click("#login-btn")
        expect(page.locator("#forbidden")).to_be_visible()
        expect(page.locator("#main")).to_be_hidden()
        expect(page.locator("#pages a")).to_have_text("内容编辑")
        assert errors == []
    entry = runtime.accounts.audit_log.search(action="user.create", actor="admin2", limit=1).entries[0]
    assert entry["target"] == editor and entry["source"] == "127.0.0.1" and entry["detail"]["role"] == "editor"
