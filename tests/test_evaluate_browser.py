"""In a real browser: blind battles between the default model and a tiny adapter update the leaderboard;
a metrics job runs from the tab and shows a per-sample view; a run report is written. Models are shown by
the names people gave them ("tiny · adapter (run …)"), never by their internal ids ("run/tiny")."""

import pytest
from playwright.sync_api import expect

from tests.browser import browser_page, require_chromium, running_app, screenshot

pytestmark = pytest.mark.browser


def make_tiny_adapter_run(workspace, tiny_model_dir):
    """A run folder whose adapter sits on the tiny 2-layer model: a real transformers contender in seconds."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    run = workspace / "runs" / "tiny"
    model.save_pretrained(run / "adapter")
    (run / "config.yaml").write_text(f"model: {tiny_model_dir}\ndataset: none\nseed: 0\n")


@pytest.fixture(scope="module")
def evaluate_page(tmp_path_factory, tiny_model_dir):
    require_chromium()
    workspace = tmp_path_factory.mktemp("evaluate_browser") / "workspace"
    make_tiny_adapter_run(workspace, tiny_model_dir)
    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Evaluate").click()
        yield page


DEFAULT = "Default model (SmolLM2-135M-Instruct)"
TINY = "tiny · adapter"


def test_three_blind_battles_update_the_leaderboard(evaluate_page):
    page = evaluate_page
    contenders = page.locator("#arena-contenders")
    contenders.get_by_label(TINY).wait_for()
    expect(contenders.get_by_label(DEFAULT, exact=True)).to_be_checked()
    expect(contenders.get_by_label(TINY)).to_be_checked()
    assert "run/tiny" not in contenders.inner_text()
    page.locator("#arena-max-tokens input[type=number]").fill("16")
    page.locator("#arena-prompt textarea").fill("What is the capital of France?")
    for number, vote in enumerate(["a", "b", "bad"], start=1):
        page.locator("#arena-next").click()
        page.wait_for_selector("#arena-vote-a:not([disabled])", timeout=180_000)
        assert page.locator("#arena-a").inner_text().strip() or page.locator("#arena-b").inner_text().strip()
        assert TINY not in page.locator("#arena-reveal").inner_text()  # names hidden before the vote
        page.locator(f"#arena-vote-{vote}").click()
        page.wait_for_function(
            "n => (document.querySelector('#leaderboard-advice')?.innerText || '').includes(n)",
            arg=f"{number} vote" if number == 1 else f"{number} votes", timeout=60_000)
        reveal = page.locator("#arena-reveal").inner_text()
        assert TINY in reveal and DEFAULT in reveal and "run/tiny" not in reveal
        assert page.locator("#arena-vote-a").is_disabled()  # one vote per battle
    board = page.locator("#leaderboard").inner_text()
    assert TINY in board and DEFAULT in board  # by name, the id one column away
    assert "run/tiny" in board
    assert "not enough votes (3 of 5 battles)" in board  # no interval that looks certain after three votes
    screenshot(page, "evaluate-arena")


def test_metrics_job_and_report_from_the_tab(evaluate_page):
    page = evaluate_page
    page.get_by_role("button", name="Automatic metrics").click()
    page.locator("#metrics-start").wait_for()
    page.get_by_label("Samples").fill("2")
    page.locator("#metrics-max-tokens input[type=number]").fill("16")
    page.locator("#metrics-start").click()  # the default GGUF on the shipped set
    page.wait_for_function(
        "() => /succeeded|failed|interrupted/.test(document.querySelector('#metrics-status')?.innerText || '')",
        timeout=240_000)
    status = page.locator("#metrics-status").inner_text()
    assert "succeeded" in status and "2 samples" in status and "perplexity" in status
    assert DEFAULT in page.locator("#metrics-table").inner_text()
    page.wait_for_function(
        "() => (document.querySelector('#metrics-samples')?.innerText || '').includes('en-capital')", timeout=30_000)
    page.get_by_role("button", name="Run report").click()
    page.locator("#report-make").click()
    page.wait_for_function(
        "() => (document.querySelector('#report-preview')?.innerText || '').includes('Run tiny: evaluation report')",
        timeout=60_000)
    assert "run/tiny" in page.locator("#report-preview").inner_text()  # arena standing made it in
    screenshot(page, "evaluate-metrics-report")

