"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright, never a browser that
Playwright downloads. Without it the tests skip with the reason, unless GOV_ASSISTANT_REQUIRE_SERVICES=1 (CI).

``browser`` is a pytest fixture (tests/conftest.py loads this module as a plugin). It is one Chromium per test
module, not per session, on purpose: while Playwright's sync API runs, it marks its event loop as running in the
main thread, so ``asyncio.run`` fails there ("cannot be called from a running event loop"). The session fixtures
that warm a runtime up with ``asyncio.run``, and every test after a browser module that calls it, need Playwright
stopped again. Each page gets a context of its own (``browser_page``): no cookie, storage or service worker is
shared between tests, or between the apps of different suites (cookies are not isolated by port on 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from demo_project import ROOT
from services import require_or_skip

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
ARTIFACTS = ROOT / "test-artifacts"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium); browser tests need Debian's Chromium"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A Playwright ``Browser`` on Debian's Chromium for one test module; screenshots go to ``ARTIFACTS``."""
    missing = browser_missing()
    if missing:
        require_or_skip(missing)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=list(ARGS))
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def browser_page(browser: Any, *, timeout_ms: float = 30_000, **context_options: Any) -> Iterator[Any]:
    """A page in a new browser context (``context_options`` as Playwright's ``new_context``), closed afterwards."""
    context = browser.new_context(**context_options)
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        yield page
    finally:
        context.close()


def open_widget(page: Any, base_url: str) -> None:
    """The citizens' page with the web chat widget, once the widget is on it."""
    page.goto(base_url + "/")
    page.wait_for_selector(".ga-widget")


def log_in(page: Any, url: str, username: str, password: str) -> None:
    """Open a staff page's login form at ``url`` and submit it (the editor, console and admin pages share it);
    the caller waits for what that page shows once logged in."""
    page.goto(url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-btn")
