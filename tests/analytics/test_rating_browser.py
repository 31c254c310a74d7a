"""The citizen rates the service in the web chat widget, in a real browser (Debian's headless Chromium through
Playwright) against a live server: after a staff member closes the conversation or hands it back, and from the
"评价本次服务" link. The ratings land in ``citizen_feedback`` and on the dashboard.

Staff act through the console's HTTP API on the same live server (the console page itself is tested elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from analytics_reference import STAFF, bearer
from browser import ARTIFACTS, browser_page, open_widget
from demo_project import LiveServer, served

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(app: Any) -> Iterator[LiveServer]:
    with served(app) as server:
        yield server


@pytest.fixture()
def page(browser: Any, live: LiveServer) -> Iterator[Any]:
    with browser_page(browser, viewport={"width": 1024, "height": 800}, locale="zh-CN") as pg:
        open_widget(pg, live.url)
        yield pg


def say(pg: Any, text: str) -> None:
    before = pg.locator(".ga-log .ga-bot").count()
    pg.fill("#ga-input", text)
    pg.press("#ga-input", "Enter")
    pg.wait_for_function(f"document.querySelectorAll('.ga-log .ga-bot').length > {before}")


def staff(live: LiveServer, runtime: Any, sid: str, *steps: tuple[str, dict[str, Any] | None]) -> None:
    headers = bearer(runtime, STAFF["agent"])
    with httpx.Client(base_url=live.url, headers=headers, timeout=30) as http:
        for step, body in steps:
            r = http.post(f"/console/api/conversations/{sid}/{step}", json=body)
            assert r.status_code == 200, (step, r.text)


def test_rate_after_the_agent_closes(page: Any, live: LiveServer, runtime: Any) -> None:
    say(page, "转人工")
    page.locator(".ga-queue").wait_for(state="visible")
    sid = page.evaluate("window.GovAssistant.sessionId")
    panel = page.locator(".ga-rate")
    assert panel.is_hidden()
    staff(live, runtime, sid, ("claim", None))
    page.locator("li.ga-agent").first.wait_for()
    assert panel.is_hidden()  # not while the agent is still serving
    staff(live, runtime, sid, ("messages", {"text": "已为您查到，请带身份证原件办理。"}), ("close", {"outcome": "resolved"}))
    page.locator("li.ga-rating").wait_for()
    panel.wait_for(state="visible")
    submit = panel.locator(".ga-rate-submit")
    assert submit.is_disabled()  # no score yet
    panel.locator(".ga-star[data-score='4']").click()
    assert panel.locator(".ga-star.ga-on").count() == 4
    assert panel.locator(".ga-star[aria-checked='true']").get_attribute("data-score") == "4"
    panel.locator(".ga-rate-comment").fill("工作人员很耐心，电话13912345678")
    submit.click()
    page.wait_for_function("() => document.querySelector('.ga-rate-status').textContent.includes('感谢您的评价')")
    page.screenshot(path=str(ARTIFACTS / "widget-rating.png"))
    [row] = runtime.feedback.for_conversation(sid)
    assert (row.score, row.comment, row.channel) == (4, "工作人员很耐心，电话139****5678", "webchat")
    assert runtime.handoff.store.latest_for(sid).rating == 4
    panel.wait_for(state="hidden")


def test_rate_when_the_agent_hands_back_to_the_assistant(page: Any, live: LiveServer, runtime: Any) -> None:
    say(page, "转人工")
    page.locator(".ga-queue").wait_for(state="visible")
    sid = page.evaluate("window.GovAssistant.sessionId")
    staff(live, runtime, sid, ("claim", None))
    page.locator("li.ga-agent").first.wait_for()
    staff(live, runtime, sid, ("return", None))
    page.locator(".ga-rate").wait_for(state="visible")
    page.locator(".ga-rate .ga-star[data-score='5']").click()
    page.locator(".ga-rate .ga-rate-submit").click()
    page.wait_for_function("() => document.querySelector('.ga-rate-status').textContent.includes('感谢')")
    assert [f.score for f in runtime.feedback.for_conversation(sid)] == [5]


def test_rate_from_the_link_once_per_stretch(page: Any, live: LiveServer, runtime: Any) -> None:
    say(page, "身份证过期了怎么换领？")
    sid = page.evaluate("window.GovAssistant.sessionId")
    admin = bearer(runtime, STAFF["admin"])
    before = httpx.get(f"{live.url}/api/dashboard", params={"days": 1}, headers=admin).json()["satisfaction"]
    link = page.get_by_role("button", name="评价本次服务")
    link.click()
    panel = page.locator(".ga-rate")
    panel.wait_for(state="visible")
    panel.locator(".ga-star[data-score='2']").click()
    panel.locator(".ga-rate-submit").click()
    page.wait_for_function("() => document.querySelector('.ga-rate-status').textContent.includes('感谢')")
    assert [f.score for f in runtime.feedback.for_conversation(sid)] == [2]
    after = httpx.get(f"{live.url}/api/dashboard", params={"days": 1}, headers=admin).json()["satisfaction"]
    assert after["count"] == before["count"] + 1 and after["distribution"]["2"] == before["distribution"]["2"] + 1
    # again without a new question: the server's bilingual refusal is shown, nothing stored
    panel.wait_for(state="hidden")
    link.click()
    panel.locator(".ga-star[data-score='1']").click()
    panel.locator(".ga-rate-submit").click()
    page.wait_for_function("() => document.querySelector('.ga-rate-status').textContent.includes('已评价')")
    assert [f.score for f in runtime.feedback.for_conversation(sid)] == [2]
    # "以后再说" closes the panel
    panel.locator(".ga-rate-cancel").click()
    panel.wait_for(state="hidden")
