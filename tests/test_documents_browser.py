"""Chat with documents in a real browser: build a collection from two shipped documents in the Chat tab's
Documents panel, ask the default model a question only they answer, and open the citation it shows.

With CHATSMITH_UPDATE_SCREENSHOTS=1 it refreshes the README's screenshot (assets/screenshots/documents.jpg).
"""

from __future__ import annotations

import os

import pytest

from tests.browser import ROOT, browser_page, require_chromium, running_app, screenshot
from tests.test_chat_browser import send, set_max_new_tokens, wait_for_answer

pytestmark = pytest.mark.browser
DOCUMENTS = ROOT / "assets" / "documents"


def test_build_a_collection_ask_and_open_the_citation(tmp_path):
    require_chromium()
    with running_app(tmp_path / "workspace") as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Chat").click()
        page.locator("#documents-panel").get_by_text("Build a document collection").click()
        page.locator("#documents-paths textarea").fill(
            f"{DOCUMENTS / 'en' / 'us-constitution.md'}\n{DOCUMENTS / 'zh' / 'labour-law.md'}\n{tmp_path / 'gone.pdf'}")
        page.locator("#documents-name textarea").fill("founding texts")
        page.locator("#documents-build").click()
        page.wait_for_function("() => /✅|❌/.test(document.querySelector('#documents-report')?.innerText || '')",
                               timeout=300_000)
        report = page.locator("#documents-report").inner_text()
        assert "✅" in report and "2 files" in report and "gone.pdf: not found" in report, report
        assert "founding texts" in page.locator("#chat-documents input").input_value()

        page.get_by_text("Generation settings").click()
        set_max_new_tokens(page, 32)
        page.get_by_text("Generation settings").click()  # closed again, so the picture shows the chat
        send(page, "How many years must a Senator have been a citizen?")
        status = wait_for_answer(page, 1)
        assert "📄" in status and "sources" in status, status
        page.wait_for_function("() => /GiB/.test(document.querySelector('#chat-memory')?.innerText || '')")
        # A full-page screenshot that resizes the window re-renders the chat and closes the panels again.
        page.set_viewport_size({"width": 1280, "height": page.evaluate("() => document.body.scrollHeight") + 200})
        first = page.locator("#chatbot .thought-group").first
        assert "📄 [1] us-constitution.md" in first.inner_text()
        first.locator(".title").first.click()  # the closed panel opens to the passage
        page.wait_for_function("e => e.querySelector('.arrow').style.transform !== 'rotate(0deg)'", arg=first.element_handle())
        assert "nine Years a Citizen" in " ".join(first.inner_text().split())
        shot = screenshot(page, "documents-chat")
        if os.environ.get("CHATSMITH_UPDATE_SCREENSHOTS"):
            save_readme_copy(page, shot)


def save_readme_copy(page, full) -> None:
    from PIL import Image

    top, bottom = page.evaluate("() => [document.querySelector('#chat-documents'), document.querySelector('#chatbot')]"
                                ".map(e => e.getBoundingClientRect()).map((r, i) => (i ? r.bottom : r.top) + window.scrollY)")
    image = Image.open(full).convert("RGB")
    image = image.crop((0, max(0, int(top) - 20), image.width, min(image.height, int(bottom) + 20)))
    image = image.resize((800, round(image.height * 800 / image.width)))
    image.save(ROOT / "assets" / "screenshots" / "documents.jpg", quality=60, optimize=True)
