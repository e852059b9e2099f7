"""In a real browser at 1440×900, a common laptop screen: the Evaluate tab's question upload box is big
enough to use, every column of the metrics table can be read, and a two-turn battle shows its answers
rendered (no literal `**` markdown), under the names people gave the models."""

import json
import re
import time

import pytest

from tests.browser import browser_page, require_chromium, running_app, screenshot
from tabs.evaluate_metrics import RESULT_HEADERS
from tests.test_evaluate_browser import make_tiny_adapter_run

pytestmark = pytest.mark.browser
LONG_MODEL = "a-rather-long-dataset-name-for-the-model-column"


def write_metrics_result(workspace) -> None:
    """A finished metrics job as core.evaluate.metrics writes it, with long cells in the first columns."""
    summary = {"samples": 20, "with_reference": 20, "mean_length": 41.5, "empty_rate": 0.0, "looping_rate": 0.05,
               "rouge_l": 0.231, "bleu": 4.2, "loss": 2.345, "perplexity": 10.43}
    folder = workspace / "jobs" / "metrics-20261130-212326-abcdef"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "model": {"kind": "adapter", "id": f"run/20261130-212326-default-{LONG_MODEL}-d6145c44958a"},
        "data": f"/somewhere/datasets/{LONG_MODEL}-d6145c44958a", "summary": summary, "samples": [],
        "notes": [], "finished": time.time()}))


@pytest.fixture(scope="module")
def wide_page(tmp_path_factory, tiny_model_dir):
    require_chromium()
    root = tmp_path_factory.mktemp("evaluate_layout")
    workspace = root / "workspace"
    make_tiny_adapter_run(workspace, tiny_model_dir)
    write_metrics_result(workspace)
    questions = root / "two-turns.jsonl"
    questions.write_text(json.dumps({"id": "two", "turns": ["Name a colour.", "And another?"]}) + "\n")
    with running_app(workspace) as url, browser_page() as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(url)
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#arena-contenders").get_by_label("tiny · adapter").wait_for()
        yield page, questions


def test_the_upload_box_is_tall_enough_to_drop_a_file_on(wide_page):
    page, _ = wide_page
    box = page.locator("#arena-prompt-file").bounding_box()
    assert box["height"] >= 120, box  # at 80 px the drop zone was a squashed sliver
    assert page.locator("#arena-prompt-file").get_by_text("Drop File Here").is_visible()


def test_every_metrics_column_can_be_read(wide_page):
    page, _ = wide_page
    page.get_by_role("button", name="Automatic metrics").click()
    table = page.locator("#metrics-table")
    page.wait_for_function("() => (document.querySelector('#metrics-table')?.innerText || '').includes('10.43')")
    page.evaluate("() => document.querySelector('#metrics-table').scrollIntoView()")
    # Each header sits inside the table's visible box, wide enough to read (it once ran off the right edge).
    frame, headers = page.evaluate("""() => {
        const table = document.querySelector('#metrics-table');
        const frame = table.getBoundingClientRect();
        return [[frame.left, frame.right], [...table.querySelectorAll('th')].map(th => {
            const box = th.getBoundingClientRect();
            return [th.innerText.trim(), box.left, box.right]; })]; }""")
    shown = {text: (left, right) for text, left, right in headers}
    assert set(RESULT_HEADERS) <= set(shown), shown
    for header in RESULT_HEADERS:
        left, right = shown[header]
        assert frame[0] - 1 <= left and right <= frame[1] + 1 and right - left >= 40, (header, shown[header], frame)
    assert "tiny" not in table.inner_text() and "a-rather-long-dataset-name" in table.inner_text()  # named
    screenshot(page, "evaluate-metrics-1440")


def test_a_two_turn_battle_shows_rendered_turns_without_markdown_marks(wide_page):
    page, questions = wide_page
    page.get_by_role("button", name="Automatic metrics").click()  # fold it again
    box = page.locator("#arena-contenders")
    assert box.get_by_label("Default model (SmolLM2-135M-Instruct)", exact=True).is_checked()
    assert box.get_by_label("tiny · adapter").is_checked()
    page.locator("#arena-prompt-file input[type=file]").set_input_files(str(questions))
    page.locator("#arena-max-tokens input[type=number]").fill("16")
    page.locator("#arena-next").click()
    page.wait_for_selector("#arena-vote-a:not([disabled])", timeout=180_000)
    for side in ("a", "b"):
        text = page.locator(f"#arena-{side}").inner_text()
        assert "Turn 1:" in text and "Turn 2:" in text, text
        assert "**" not in text, text
    page.locator("#arena-vote-tie").click()
    page.wait_for_function("() => (document.querySelector('#arena-reveal')?.innerText || '').includes('Tie')")
    reveal = page.locator("#arena-reveal").inner_text()
    assert "Default model (SmolLM2-135M-Instruct)" in reveal and "tiny · adapter" in reveal and "run/" not in reveal
    screenshot(page, "evaluate-battle-1440")
