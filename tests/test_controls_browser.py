"""In a real browser, controls that must not mislead: presets this CPU cannot run are greyed out with the
reason before any click; Chat says it is loading a model and how long the load took apart from the first
token; Regenerate gives a new answer unless a seed is fixed; "⏹ stopped" marks only stopped answers; and
once the conversation switches model, each answer names the model that wrote it; Data Run and Train's
Check say what they are doing and how far, not just a spinner.

The models are the packaged default GGUF and the tiny 2-layer transformers model, placed in the workspace
as a base model.
"""

from __future__ import annotations

import json
import os

import pytest

from core.train.settings import APPLE_PRESET, CPU_PRESET, GPU_PRESET
from core.workspace import Workspace
from tests.browser import browser_page, require_chromium, running_app
from tests.browser_fixtures import place_dataset
from tests.test_chat_browser import BOT, send, set_max_new_tokens, wait_for_answer

pytestmark = pytest.mark.browser
TINY = "Base · tiny (transformers)"
# Every text #chat-status shows, kept in the page, so a line that shows only for a moment is seen too.
RECORD_STATUS = """() => { window.statuses = [];
  new MutationObserver(() => { const text = document.querySelector('#chat-status')?.innerText || '';
    if (text !== window.statuses[window.statuses.length - 1]) window.statuses.push(text); })
  .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


@pytest.fixture
def app_page(tmp_path, tiny_model_dir):
    require_chromium()
    workspace = tmp_path / "workspace"
    (workspace / "models").mkdir(parents=True)
    os.symlink(tiny_model_dir, workspace / "models" / "tiny")
    # Without the background warm-up, so the first question meets a model that is not loaded yet.
    with running_app(workspace, ["--no-warm"]) as url, browser_page() as page:
        page.goto(url)
        yield page


def pick_model(page, label: str) -> None:
    page.locator("#chat-model input").click()
    page.get_by_role("option", name=label).click()
    page.wait_for_function("() => /ready|❌/.test(document.querySelector('#chat-model-note')?.innerText || '')",
                           timeout=120_000)


def answers(page) -> list[str]:
    return page.locator(BOT).all_inner_texts()


def test_presets_this_cpu_cannot_run_are_greyed_out_with_the_reason_before_any_click(app_page):
    page = app_page
    page.get_by_role("tab", name="Train").click()
    unavailable = page.locator("#train-preset-unavailable")
    unavailable.get_by_label(GPU_PRESET).wait_for()
    assert unavailable.get_by_label(GPU_PRESET).is_disabled()
    assert "needs an NVIDIA GPU" in unavailable.inner_text()  # the reason, shown without a click
    assert page.locator("#train-preset").get_by_label(CPU_PRESET).is_enabled()
    assert page.locator("#train-preset").get_by_label(GPU_PRESET).count() == 0
    assert APPLE_PRESET in page.locator("#train-preset").inner_text() + unavailable.inner_text()


def test_chat_loads_regenerates_stops_and_marks_models_as_it_says(app_page):
    page = app_page
    page.get_by_role("tab", name="Chat").click()
    page.get_by_text("Generation settings").click()
    set_max_new_tokens(page, 12)
    page.evaluate(RECORD_STATUS)
    send(page, "What is the capital of France?")  # the default model is not loaded yet
    first = wait_for_answer(page, 1)
    assert any(text.startswith("⏳ loading model") for text in page.evaluate("window.statuses"))
    assert first.startswith("model loaded in ") and "first token" in first and "⏹ stopped" not in first
    send(page, "And of Italy?")
    assert not wait_for_answer(page, 2).startswith("model loaded")  # loaded already: no load time

    pick_model(page, TINY)  # mid-conversation: each answer now names the model that wrote it
    set_max_new_tokens(page, 8)
    send(page, "Hello?")
    tiny_status = wait_for_answer(page, 3)
    assert "⏹ stopped" not in tiny_status  # a transformers answer that ran to its end is not "stopped"
    shown = answers(page)
    assert shown[0].startswith("🤖 Default model") and shown[2].startswith(f"🤖 {TINY}")

    regenerated = []
    for _ in range(2):
        page.evaluate("window.statuses = []")
        page.locator("#chat-regenerate").click()
        page.wait_for_function("() => window.statuses.some(s => s.startsWith('…'))")
        wait_for_answer(page, 3)
        regenerated.append(answers(page)[2])
    assert len({*regenerated}) == 2, regenerated  # seed 0, the default: a new answer each time

    seed = page.locator("#chat-seed input")
    seed.fill("7")
    seed.press("Enter")
    fixed = []
    for _ in range(2):
        page.evaluate("window.statuses = []")
        page.locator("#chat-regenerate").click()
        page.wait_for_function("() => window.statuses.some(s => s.startsWith('…'))")
        fixed.append(wait_for_answer(page, 3) and answers(page)[2])
    assert fixed[0] == fixed[1]  # a typed seed reproduces the answer


def test_data_run_says_what_it_is_doing_and_how_far(app_page, tmp_path):
    from core.journey import sample_files

    # A file big enough that reading it shows for a while: the shipped samples alone are read in
    # milliseconds, faster than the page draws each "reading" line.
    big = tmp_path / "many_alpaca.jsonl"
    big.write_text("".join(json.dumps({"instruction": f"Question {n}?", "output": f"Answer {n}."}) + "\n"
                           for n in range(15_000)))
    files = [big, *sample_files()]
    page = app_page
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-files input[type=file]").set_input_files([str(path) for path in files])
    page.locator("#data-detected").get_by_role("cell", name="alpaca", exact=True).first.wait_for()
    page.evaluate("""() => { window.seen = new Set();
      new MutationObserver(() => { for (const match of document.body.innerText.matchAll(/reading \\S+ *[^\\n]*/g))
        window.seen.add(match[0]); })
      .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    page.locator("#data-run").click()
    page.locator("#data-report >> text=conversations kept").wait_for(timeout=180_000)
    seen = page.evaluate("[...window.seen]")
    names = [path.name for path in files]
    assert any(any(name in line for name in names) and "%" in line for line in seen), seen  # which file, how far


def test_check_and_probe_say_what_they_are_doing(app_page, tmp_path, tiny_model_dir):
    place_dataset(Workspace(tmp_path / "workspace"), "hello-data")
    page = app_page
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-refresh").click()
    page.locator("#train-dataset input").click()
    page.get_by_role("option", name="hello-data").click()
    model = page.locator("#train-model input")
    model.fill(str(tiny_model_dir))
    model.press("Enter")
    page.evaluate("""() => { window.seen = new Set();
      const saying = /(Loading the tokenizer|Tokenising)[^\\n]*/g;
      new MutationObserver(() => { for (const match of document.body.innerText.matchAll(saying))
        window.seen.add(match[0]); })
      .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    page.locator("#train-check").click()
    page.locator("#train-preflight >> text=/parameters/i").wait_for(timeout=120_000)
    assert page.evaluate("[...window.seen]"), "Check showed nothing while it worked"

    page.evaluate("""() => { window.probing = new Set();
      new MutationObserver(() => { const text = document.querySelector('#train-preflight')?.innerText || '';
        for (const match of text.matchAll(/probing[^\\n]*/g)) window.probing.add(match[0]); })
      .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    page.locator("#train-probe").click()
    page.locator("#train-preflight >> text=/ETA/").wait_for(timeout=300_000)
    probing = page.evaluate("[...window.probing]")
    assert any("step" in line and " of " in line for line in probing), probing  # "probing: step k of n"
