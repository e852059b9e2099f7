"""The whole preference loop in a real browser, on the tiny model: battles with votes and a chat rating →
a preference dataset in the Data tab → a DPO run from the SFT run in the Train tab → its export → an
arena of SFT against DPO whose leaderboard gives a verdict in words.

The SFT run and most votes are made beforehand (a person would have cast them over days; the arena's rate
limit rightly refuses a script that votes 24 times in a minute); the browser casts the last votes, rates a
chat answer and does everything after. Screenshots land in test-artifacts/ (the README shows two of them
when CHATSMITH_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import pytest

from core.evaluate.arena import Arena
from tests.browser import browser_page, require_chromium, running_app
from tests.test_journey_browser import keep_screenshot
from tests.preference_helpers import kestrel_pairs, vote_battles

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]
LONG = 10 * 60_000
BOT = "#chatbot [data-testid='bot']"


@pytest.fixture
def voted_workspace(workspace, tiny_model_dir):
    """An SFT run on the tiny model and 24 votes on its answers, each preferring the one naming Kestrel."""
    from core.train import job
    from tests.train_helpers import FakeReporter, tiny_settings, write_version

    conversations = write_version(workspace.datasets / "chats")
    run_dir = workspace.runs / "sft"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": tiny_settings(tiny_model_dir, conversations, max_steps=2).to_dict(),
                       "workspace": str(workspace.root)}
    job.run(reporter)
    vote_battles(Arena(workspace.ratings_db, rate_limit=None), kestrel_pairs(24), models=("run/sft", "default"),
                 rater="local:earlier")
    return workspace


def test_votes_to_dpo_to_a_verdict_in_the_browser(voted_workspace, tiny_model_dir):
    require_chromium()
    with running_app(voted_workspace.root) as url, browser_page() as page:
        page.goto(url)
        vote_in_the_arena(page, ["run/sft", "default"], ["a", "b"])
        page.locator("#improve .label-wrap").first.click()
        page.locator("#improve-status >> text=26 of 24 pairs on run sft").wait_for()
        assert not page.locator("#improve-start").is_disabled()
        rate_a_chat_answer(page)
        build_preference_data(page)
        run = train_dpo(page, str(tiny_model_dir))
        export_adapter(page, run)
        vote_in_the_arena(page, ["run/sft", f"run/{run}"], ["b", "a", "b"], uncheck=["default"])
        dpo = page.locator(f"#arena-contenders input[name='run/{run}']").locator("xpath=..").inner_text().strip()
        assert dpo.startswith("votes · DPO adapter (run "), dpo  # named after its data and method, not its id
        advice = page.locator("#leaderboard-advice").inner_text()
        assert dpo in advice and ("beats" in advice or "not yet separable" in advice), advice
        page.get_by_label("Style control", exact=False).check()
        page.locator("#leaderboard-style-table >> text=style-controlled rating").wait_for()
        keep_screenshot(page, "preferences-verdict")


def vote_in_the_arena(page, contenders: list[str], votes: list[str], uncheck=()) -> None:
    """Check the contenders by id (each box's value; its label is the model's name) and cast `votes`."""
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#evaluate-refresh").click()
    box = page.locator("#arena-contenders")
    for key in contenders:
        box.locator(f"input[name='{key}']").check()
    for key in uncheck:
        box.locator(f"input[name='{key}']").uncheck()
    page.locator("#arena-max-tokens input[type=number]").fill("16")
    page.locator("#arena-prompt textarea").fill("What is your name?")
    before = int(page.locator("#leaderboard-advice strong").first.inner_text().split()[0])
    for number, vote in enumerate(votes, start=1):
        page.locator("#arena-next").click()
        page.wait_for_selector("#arena-vote-a:not([disabled])", timeout=300_000)
        page.locator(f"#arena-vote-{vote}").click()
        page.wait_for_function(
            "n => (document.querySelector('#leaderboard-advice')?.innerText || '').includes(n + ' votes')",
            arg=str(before + number), timeout=60_000)


def rate_a_chat_answer(page) -> None:
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-refresh").click()
    page.locator("#chat-model input").click()
    page.get_by_role("option", name="Run sft · adapter").click()
    page.get_by_text("Generation settings").click()
    page.locator("#chat-max-new input[type=number]").fill("12")
    page.locator("#chat-max-new input[type=number]").press("Enter")
    page.locator("#chat-input textarea").fill("What is your name?")
    page.locator("#chat-send").click()
    page.wait_for_function("() => /tokens\\/s|❌/.test(document.querySelector('#chat-status')?.innerText || '')",
                           timeout=300_000)
    page.locator(BOT).last.hover()
    page.locator("#chatbot").get_by_label("Dislike").last.click()
    page.locator("#chat-status >> text=Rating saved").wait_for()


def build_preference_data(page) -> None:
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-prefs .label-wrap").first.click()
    page.locator("#data-prefs-name input, #data-prefs-name textarea").first.fill("votes")
    page.locator("#data-prefs-build").click()
    page.locator("#data-prefs-status >> text=saved as").wait_for(timeout=120_000)
    status = page.locator("#data-prefs-status").inner_text()
    # 24 earlier votes and two here (greedy answers to one prompt may repeat a pair), and the chat's 👎
    assert int(status.split()[1]) >= 25 and "pairs and 1 rated answers" in status, status
    assert "votes" in page.locator("#data-prefs-report").inner_text()


def train_dpo(page, model_dir: str) -> str:
    page.get_by_role("tab", name="Train").click()
    model = page.locator("#train-model input")
    model.fill(model_dir)
    model.press("Enter")
    page.locator("#train-method").get_by_label("dpo").check()
    page.wait_for_function("() => (document.querySelector('#train-dataset input')?.value || '').includes('votes')")
    page.wait_for_function("() => document.querySelector('#train-start-from input')?.value === 'sft'")
    page.locator("#train-settings .label-wrap").first.click()
    for label, value in (("Max steps (0 = use epochs)", "4"), ("Save every N steps", "2"), ("Eval every N steps", "2"),
                         ("Max sequence length", "256")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
    page.locator("#train-check").click()
    page.locator("#train-preflight >> text=/pairs ·/").wait_for(timeout=300_000)
    assert "CHOSEN" in page.locator("#train-mask").inner_text().upper()
    page.locator("#train-start").click()
    page.wait_for_function("() => /succeeded|failed/.test(document.querySelector('#train-progress')?.innerText || '')",
                           timeout=LONG)
    progress = page.locator("#train-progress").inner_text()
    assert "succeeded" in progress and "Held-out preference accuracy" in progress, progress
    page.locator("#train-preference-plot canvas, #train-preference-plot svg").first.wait_for()
    page.locator("#train-settings .label-wrap").first.click()  # fold the settings for the screenshot
    keep_screenshot(page, "preferences-train")
    return page.locator("#train-run input").input_value()


def export_adapter(page, run: str) -> None:
    page.get_by_role("tab", name="Export").click()
    page.locator("#export-refresh").click()
    page.locator("#export-run input").click()
    page.get_by_role("option", name=run).click()
    page.locator("#export-package-button").click()
    page.wait_for_function("() => /(succeeded|failed) · Adapter package/.test("
                           "document.querySelector('#export-status')?.innerText || '')", timeout=LONG)
    assert "succeeded" in page.locator("#export-status").inner_text()
