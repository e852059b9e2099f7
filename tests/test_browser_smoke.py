"""Smoke test in a real browser: the app starts as the README says, shows five tabs, and chats."""

import pytest

from tests.browser import browser_page, require_chromium, running_app, screenshot

pytestmark = pytest.mark.browser


def test_five_tabs_open_and_chat_streams_an_answer(tmp_path):
    require_chromium()
    with running_app(tmp_path / "workspace") as url, browser_page() as page:
        page.goto(url)
        for name in ["Data", "Train", "Export", "Evaluate", "Chat"]:
            page.get_by_role("tab", name=name).click()
            page.wait_for_timeout(300)
            screenshot(page, f"smoke-{name.lower()}")
        page.locator("#chat-input textarea").fill("What is the capital of France?")
        page.locator("#chat-send").click()
        answer = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']").last
        answer.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => { const s = document.querySelector('#chat-status'); return s && /tokens\\/s|❌/.test(s.innerText); }",
            timeout=120_000)
        assert "❌" not in page.locator("#chat-status").inner_text()
        assert len(answer.inner_text().strip()) > 0
        page.get_by_text("System").click()
        page.wait_for_selector("#system-table >> text=RAM in use", timeout=60_000)
        screenshot(page, "smoke-chat")
