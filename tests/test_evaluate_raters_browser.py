"""In a real browser: an arena rater is the browser (a signed cookie), not the page session, so a reload
after voting too fast is still too fast. Its own app and browser: the rate limit is set low for it."""

import pytest

from tests.browser import browser_page, require_chromium, running_app
from tests.test_evaluate_browser import make_tiny_adapter_run

pytestmark = pytest.mark.browser


def test_a_reload_keeps_the_rater_and_its_too_fast_flag(tmp_path, tiny_model_dir, monkeypatch):
    """Raters are the browser's signed cookie, not the page session: voting too fast, reloading and voting
    again is still too fast."""
    require_chromium()
    workspace = tmp_path / "workspace"
    make_tiny_adapter_run(workspace, tiny_model_dir)
    monkeypatch.setenv("CHATSMITH_MAX_VOTES", "2")
    monkeypatch.setenv("CHATSMITH_VOTE_WINDOW_S", "600")
    with running_app(workspace) as url, browser_page() as page:
        for number, reload in enumerate([False, False, True], start=1):
            if reload or number == 1:
                page.goto(url)
                page.get_by_role("tab", name="Evaluate").click()
                page.locator("#arena-contenders").get_by_label("tiny · adapter").wait_for()
                page.locator("#arena-max-tokens input[type=number]").fill("8")
                page.locator("#arena-prompt textarea").fill("Hello?")
            page.locator("#arena-next").click()
            page.wait_for_selector("#arena-vote-a:not([disabled])", timeout=180_000)
            page.locator("#arena-vote-a").click()
            page.wait_for_function(
                "() => /wins|Too many votes/.test(document.querySelector('#arena-reveal')?.innerText || '')",
                timeout=60_000)
        assert "Too many votes too fast" in page.locator("#arena-reveal").inner_text()
        cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
        assert cookies["chatsmith-rater"]["httpOnly"]
