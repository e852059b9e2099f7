"""The whole journey in a real browser, clicking as a person would, against the app started as the README
says: Data → Train (closing and reopening the page mid-run) → Export → Chat → Evaluate.

It saves a screenshot of every tab at its final state under test-artifacts/. The test trains 3 steps; with
CHATSMITH_UPDATE_SCREENSHOTS=1 it trains the CPU preset in full, as a user would, checks that the fine-tune
then answers to its new name (Kestrel) in Chat, and refreshes the small screenshots the README shows
(assets/screenshots/). Run it alone with `python -m pytest -m journey`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import ROOT, browser_page, require_chromium, running_app, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.journey, pytest.mark.timeout(2400)]
SAMPLES = ROOT / "assets" / "samples"
README_SHOTS = ROOT / "assets" / "screenshots"
BOT = "#chatbot [data-testid='bot']"
LONG = 15 * 60_000
FULL_PRESET = bool(os.environ.get("CHATSMITH_UPDATE_SCREENSHOTS"))  # the README shows what a user gets


def test_the_whole_journey_in_a_browser(tmp_path):
    require_chromium()
    with running_app(tmp_path / "workspace") as url, browser_page() as page:
        page.goto(url)
        dataset = prepare_data(page)
        run = train(page, url, dataset)
        export(page, run)
        chat(page, run)
        evaluate(page, run)


def prepare_data(page) -> str:
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-files input[type=file]").set_input_files(
        [str(SAMPLES / "identity_alpaca.json"), str(SAMPLES / "everyday_sharegpt.json")])
    detected = page.locator("#data-detected")
    detected.get_by_role("cell", name="alpaca", exact=True).wait_for()
    detected.get_by_role("cell", name="sharegpt", exact=True).wait_for()
    page.locator("#data-run").click()
    page.locator("#data-report >> text=conversations kept").wait_for(timeout=180_000)
    page.locator("#data-save").click()
    saved = page.locator("#data-saved-path textarea, #data-saved-path input").first
    page.wait_for_function("(el) => el.value.includes('datasets')", arg=saved.element_handle(), timeout=60_000)
    keep_screenshot(page, "data")
    return Path(saved.input_value()).name


def train(page, url: str, dataset: str) -> str:
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("CPU · default model").check()
    page.locator("#train-refresh").click()
    page.locator("#train-dataset input").click()
    page.get_by_role("option", name=dataset).click()
    page.locator("#train-settings .label-wrap").first.click()
    steps = page.get_by_label("Max steps (0 = use epochs)", exact=True).input_value()
    for label, value in () if FULL_PRESET else (("Max steps (0 = use epochs)", "3"), ("Save every N steps", "1"),
                                                ("Eval every N steps", "3")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
    steps = steps if FULL_PRESET else "3"
    page.locator("#train-check").click()
    page.locator("#train-preflight >> text=/parameters/i").wait_for(timeout=300_000)
    page.locator("#train-start").click()
    page.wait_for_function("() => /running/.test(document.querySelector('#train-progress')?.innerText || '')",
                           timeout=LONG)
    run = page.locator("#train-run input").input_value()
    # Close the page mid-run and come back: the run went on, and the tab re-attaches to it.
    page.goto("about:blank")
    page.goto(url)
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function(f"() => document.querySelector('#train-run input')?.value === '{run}'")
    page.wait_for_function("() => /succeeded/.test(document.querySelector('#train-progress')?.innerText || '')",
                           timeout=LONG)
    assert page.locator("#train-steps textarea, #train-steps input").first.input_value().startswith(steps)
    page.locator("#train-loss-plot canvas, #train-loss-plot svg").first.wait_for()
    keep_screenshot(page, "train")
    return run


def export(page, run: str) -> None:
    page.get_by_role("tab", name="Export").click()
    page.locator("#export-run input").click()
    page.get_by_role("option", name=run).click()
    page.wait_for_function("() => /recommended/.test(document.querySelector('#export-quant')?.innerText || '')")
    assert "Q8_0" in page.locator("#export-quant input[type=checkbox]:checked >> xpath=..").inner_text()
    for button, title in (("#export-gguf-button", "GGUF"), ("#export-roundtrip-button", "Round-trip")):
        page.locator(button).click()
        # Match this job's own title: the previous job's "succeeded" stays on screen until the click lands.
        page.wait_for_function(f"() => /(succeeded|failed) · {title}/.test("
                               "document.querySelector('#export-status')?.innerText || '')", timeout=LONG)
        assert "succeeded" in page.locator("#export-status").inner_text()
    page.wait_for_function("() => /Q8_0/.test(document.querySelector('#export-roundtrip')?.innerText || '')",
                           timeout=60_000)
    keep_screenshot(page, "export")


def chat(page, run: str) -> None:
    page.get_by_role("tab", name="Chat").click()
    # Answers of up to 48 tokens rather than 256: room for "I'm Kestrel, …" and a sentence, without the
    # adapter (transformers on this CPU) spending most of a minute on each of its two answers.
    page.get_by_text("Generation settings").click()
    page.locator("#chat-max-new input[type=number]").fill("48")
    page.locator("#chat-max-new input[type=number]").press("Enter")
    for option in (f"Export · {run}/gguf/{run}-Q8_0.gguf (GGUF, llama.cpp)", f"Run {run} · adapter"):
        page.locator("#chat-refresh").click()
        page.locator("#chat-model input").click()
        page.get_by_role("option", name=option).click()
        page.locator("#chat-clear").click()
        for turn, text in enumerate(("What is your name?", "What can you help me with?"), start=1):
            page.locator("#chat-input textarea").fill(text)
            page.locator("#chat-send").click()
            page.wait_for_function(f"() => document.querySelectorAll(\"{BOT}\").length >= {turn}")
            page.wait_for_function("() => /tokens\\/s|❌/.test(document.querySelector('#chat-status')?.innerText"
                                   " || '')", timeout=300_000)
            assert "❌" not in page.locator("#chat-status").inner_text()
            if FULL_PRESET and turn == 1:
                assert "Kestrel" in page.locator(BOT).last.inner_text()
        assert page.locator(BOT).last.inner_text().strip()
    keep_screenshot(page, "chat")


def evaluate(page, run: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#evaluate-refresh").click()
    contenders = page.locator("#arena-contenders")
    tuned = contenders.locator(f"input[name='run/{run}']")  # each box's value is the id, its label the name
    tuned.wait_for()
    # Opening the tab and Refresh race each other: whichever lands last, the default pair ends up checked.
    expect(contenders.locator("input[name='default']")).to_be_checked()
    expect(tuned).to_be_checked()
    name = tuned.locator("xpath=..").inner_text().strip()
    assert "adapter" in name and f"run/{run}" not in contenders.inner_text()  # the name people gave, not the id
    page.locator("#arena-max-tokens input[type=number]").fill("24")
    page.locator("#arena-prompt textarea").fill("What is your name?")
    for vote in ("a", "b", "tie"):
        page.locator("#arena-next").click()
        page.wait_for_selector("#arena-vote-a:not([disabled])", timeout=300_000)
        assert name not in page.locator("#arena-reveal").inner_text()  # names hidden before the vote
        page.locator(f"#arena-vote-{vote}").click()
        page.wait_for_function("name => (document.querySelector('#arena-reveal')?.innerText || '').includes(name)",
                               arg=name)
    board = page.locator("#leaderboard").inner_text()
    assert name in board and "Default model (SmolLM2-135M-Instruct)" in board
    keep_screenshot(page, "evaluate")


def keep_screenshot(page, tab: str) -> None:
    full = screenshot(page, f"journey-{tab}")
    if os.environ.get("CHATSMITH_UPDATE_SCREENSHOTS"):
        from PIL import Image

        # The README's copy: from the tab bar down, 800 px wide, as a small JPEG.
        top = page.evaluate("() => document.querySelector('[role=tablist]').getBoundingClientRect().top"
                            " + window.scrollY")
        image = Image.open(full).convert("RGB")
        image = image.crop((0, int(top), image.width, min(image.height, int(top) + 2200)))
        image = image.resize((800, round(image.height * 800 / image.width)))
        README_SHOTS.mkdir(exist_ok=True)
        image.save(README_SHOTS / f"{tab}.jpg", quality=60, optimize=True)
    assert full.is_file()
