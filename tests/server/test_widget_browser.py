"""The web chat widget in a real browser: Playwright driving Debian's headless Chromium against a live server.

Never a downloaded browser: the executable is /usr/bin/chromium. Without it these tests are skipped, unless
GOV_ASSISTANT_REQUIRE_SERVICES=1 (CI), where a missing browser is a failure. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from browser import ARTIFACTS, browser_page, open_widget
from server_harness import FORM_ID, FORM_START, LiveServer, form_answer

pytestmark = pytest.mark.browser

BOT = ".ga-log .ga-bot"


@pytest.fixture()
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    with browser_page(browser, timeout_ms=20_000, viewport={"width": 1024, "height": 800}, locale="zh-CN") as pg:
        open_widget(pg, live_server.url)
        yield pg


def bot_count(pg: Any) -> int:
    return int(pg.locator(BOT).count())


def say(pg: Any, text: str) -> str:
    """Type and send like a citizen; returns the text of the bot's new messages once they arrived."""
    before = bot_count(pg)
    pg.fill("#ga-input", text)
    pg.press("#ga-input", "Enter")
    pg.wait_for_function(f"document.querySelectorAll('{BOT}').length > {before}")
    pg.wait_for_selector(".ga-typing", state="hidden")
    return "\n".join(pg.locator(BOT).nth(i).inner_text() for i in range(before, bot_count(pg)))


def test_complete_the_id_card_form_with_a_quick_reply(page: Any, backoffice: Any) -> None:
    reply = say(page, FORM_START)
    assert "身份证" in reply
    clicked = 0
    for _ in range(10):
        if "确认提交" in reply:
            break
        # follow the prompt: a question with quick replies is answered by clicking one, the others by typing
        last = page.locator(BOT).last
        quick = last.locator(".ga-quick")
        answer = form_answer(last.inner_text())
        if quick.count() and quick.filter(has_text=answer).count():
            before = bot_count(page)
            quick.filter(has_text=answer).first.click()
            page.wait_for_function(f"document.querySelectorAll('{BOT}').length > {before}")
            page.wait_for_selector(".ga-typing", state="hidden")
            reply = "\n".join(page.locator(BOT).nth(i).inner_text() for i in range(before, bot_count(page)))
            clicked += 1
        else:
            reply = say(page, answer)
    transcript = page.locator(".ga-log").inner_text()
    assert "1101**********7571" in reply and FORM_ID not in reply, transcript  # the confirmation masks the ID
    assert clicked >= 1, transcript  # reason and district were chosen with quick replies
    page.screenshot(path=str(ARTIFACTS / "widget-form-confirm.png"), full_page=True)
    before = bot_count(page)
    submitted_before = len(backoffice.state.records)
    page.get_by_role("button", name="确认提交").last.click()
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length > {before}")
    done = page.locator(BOT).last.inner_text()
    assert re.search(r"YZ-\d{8}-\d{4}", done), page.locator(".ga-log").inner_text()
    assert len(backoffice.state.records) == submitted_before + 1
    # the quick reply shows its title, not the payload
    assert page.locator(".ga-user .ga-text").last.inner_text() == "确认提交"
    page.screenshot(path=str(ARTIFACTS / "widget-form-submitted.png"), full_page=True)


def test_history_after_reload(page: Any) -> None:
    say(page, "你好")
    say(page, "市民中心开放时间")
    texts = page.locator(".ga-log .ga-msg .ga-text").all_inner_texts()
    assert page.locator(".ga-citations a, .ga-citations li").count() >= 1, page.locator(".ga-log").inner_text()
    page.reload()
    page.wait_for_function(f"document.querySelectorAll('.ga-log .ga-msg').length >= {len(texts)}")
    assert page.locator(".ga-log .ga-msg .ga-text").all_inner_texts() == texts
    assert page.locator(".ga-pending").count() == 0
    page.screenshot(path=str(ARTIFACTS / "widget-history.png"), full_page=True)


def test_elderly_mode_keyboard_only(page: Any) -> None:
    widget = page.locator(".ga-widget")
    size = lambda: float(widget.evaluate("n => parseFloat(getComputedStyle(n).fontSize)"))  # noqa: E731
    normal = size()
    # keyboard only: Tab from the page start reaches the elderly toggle, Enter switches it on
    page.locator("body").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('ga-elderly-toggle')"):
            break
    page.keyboard.press("Enter")
    toggle = page.locator(".ga-elderly-toggle")
    assert toggle.get_attribute("aria-pressed") == "true"
    assert size() >= normal * 1.25
    # Tab on to the input, type, Enter sends
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id === 'ga-input'"):
            break
    assert page.evaluate("document.activeElement.id") == "ga-input"
    before = bot_count(page)
    page.keyboard.type("你好")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length > {before}")
    assert "您好" in page.locator(BOT).last.inner_text()
    assert page.locator(".ga-log").get_attribute("aria-live") == "polite"
    page.screenshot(path=str(ARTIFACTS / "widget-elderly.png"), full_page=True)
    # the choice survives a reload
    page.reload()
    page.wait_for_selector(".ga-widget.ga-elderly")
    assert page.locator(".ga-elderly-toggle").get_attribute("aria-pressed") == "true"


def test_read_aloud_speaks_bot_messages(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context()
    # headless Chromium has no voices: record what the widget hands to speech synthesis
    context.add_init_script(
        "window.__spoken = []; window.speechSynthesis.speak = u => window.__spoken.push([u.text, u.lang]);"
    )
    pg = context.new_page()
    try:
        pg.goto(live_server.url + "/")
        pg.wait_for_selector(".ga-widget")
        say(pg, "谢谢")
        assert pg.evaluate("window.__spoken") == []  # off by default
        pg.get_by_role("button", name="朗读").click()
        assert pg.locator(".ga-speak-toggle").get_attribute("aria-pressed") == "true"
        reply = say(pg, "你好")
        spoken = pg.evaluate("window.__spoken")
        assert len(spoken) == 1 and spoken[0][1] == "zh-CN" and spoken[0][0] in reply
    finally:
        context.close()


def test_html_and_script_are_shown_as_text(page: Any) -> None:
    attack = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>粗体</b>'
    say(page, attack)
    assert page.locator(".ga-user .ga-text").last.inner_text() == attack
    assert page.locator(".ga-log img, .ga-log script, .ga-log b").count() == 0
    assert page.evaluate("window.__pwned === undefined")


def test_mobile_width(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    try:
        pg.goto(live_server.url + "/")
        pg.wait_for_selector(".ga-widget")
        say(pg, "你好")
        box = pg.locator(".ga-widget").bounding_box()
        assert box is not None and box["width"] <= 375
        assert pg.evaluate("document.documentElement.scrollWidth") <= 375
        send = pg.locator(".ga-send").bounding_box()
        assert send is not None and send["x"] + send["width"] <= 375 and send["height"] >= 40
        pg.screenshot(path=str(ARTIFACTS / "widget-mobile-375.png"), full_page=True)
    finally:
        context.close()


def test_rest_fallback_and_resend_after_network_loss(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 800, "height": 700})
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    try:
        # no WebSocket at all (a proxy that refuses upgrades), and the network down for REST too
        pg.route_web_socket(re.compile(r".*/webchat/ws.*"), lambda ws: ws.close())
        pg.route("**/webchat/messages", lambda route: route.abort("internetdisconnected"))
        pg.goto(live_server.url + "/")
        pg.wait_for_selector(".ga-widget")
        pg.fill("#ga-input", "谢谢")
        pg.press("#ga-input", "Enter")
        pg.wait_for_selector(".ga-user.ga-pending")
        pg.wait_for_function("document.querySelector('.ga-status').textContent.length > 0")
        assert bot_count(pg) == 0
        # the network comes back: the pending message goes out over REST, answered once
        pg.unroute("**/webchat/messages")
        pg.wait_for_function(f"document.querySelectorAll('{BOT}').length >= 1", timeout=15_000)
        pg.wait_for_timeout(3500)  # one more resend period: nothing may be shown twice
        assert pg.locator(".ga-user").count() == 1 and bot_count(pg) == 1
        assert pg.locator(".ga-pending").count() == 0
        pg.reload()
        pg.wait_for_function(f"document.querySelectorAll('{BOT}').length >= 1")
        assert pg.locator(".ga-user .ga-text").all_inner_texts() == ["谢谢"] and bot_count(pg) == 1
        pg.screenshot(path=str(ARTIFACTS / "widget-rest-fallback.png"), full_page=True)
    finally:
        context.close()
