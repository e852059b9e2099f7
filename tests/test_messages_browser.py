"""In a browser whose language is Chinese (zh-CN), on a workspace with a finished run and a few votes:
the Train tab's presets, preset note and job status line, the Export tab's quantisation recommendation and
the Evaluate leaderboard's headers and vote count read in Chinese, not in English."""

from __future__ import annotations

import json
import re
import time

import pytest

from core.evaluate.arena import Arena
from core.train import start
from tests.browser import ROOT, browser_page, require_chromium, running_app, screenshot
from tests.test_evaluate_browser import make_tiny_adapter_run

pytestmark = pytest.mark.browser


def finish_run(run_dir) -> None:
    """The job files a finished training run leaves, as the job runner writes them."""
    (run_dir / "job.json").write_text(json.dumps({"kind": "train", "title": run_dir.name, "created": time.time(),
                                                  "heavy": True, "target": start.TARGET, "params": {}}))
    (run_dir / "status.json").write_text(json.dumps({
        "state": "succeeded", "step": 30, "total": 30, "message": "Done: 30 steps in 12 s; adapter saved.",
        "started": time.time() - 12, "ended": time.time()}))
    (run_dir / "events.jsonl").write_text(json.dumps({"step": 30, "loss": 1.2, "tokens_per_s": 1500}) + "\n")


def cast_votes(ratings_db) -> None:
    arena = Arena(ratings_db, rate_limit=None)
    for number in range(3):
        battle = arena.new_battle(["base", "tuned"], "Hi", f"rater-{number}")
        arena.save_answers(battle, "Hello!", "Hi there.")
        arena.vote(battle, "b", f"rater-{number}", f"key-{number}")


def text_of(page, selector: str, contains: str) -> str:
    """The element's text once it contains `contains` (handlers fill it after the page has loaded)."""
    page.wait_for_function("([s, c]) => (document.querySelector(s)?.innerText || '').includes(c)",
                           arg=[selector, contains])
    return page.locator(selector).inner_text()


def test_a_chinese_browser_reads_the_tabs_messages_in_chinese(tmp_path, tiny_model_dir):
    require_chromium()
    workspace = tmp_path / "workspace"
    make_tiny_adapter_run(workspace, tiny_model_dir)
    finish_run(workspace / "runs" / "tiny")
    cast_votes(workspace / "ratings.sqlite")
    with running_app(workspace) as url, browser_page(locale="zh-CN") as page:
        page.goto(url)
        try:
            page.get_by_role("tab", name=re.compile("训练|Train")).click()
            presets = text_of(page, "#train-preset", "默认模型")
            assert "CPU · 默认模型" in presets and "default model" not in presets
            assert page.get_by_text("在 CPU 上以 fp32 做 LoRA").is_visible()
            progress = text_of(page, "#train-progress", "已完成")
            assert "完成：30 步，用时 12 秒" in progress and "succeeded" not in progress and "Done" not in progress

            page.get_by_role("tab", name=re.compile("导出|Export")).click()
            reason = text_of(page, "#export-quant-reason", "Q8_0：这个模型很小")
            assert "small models" not in reason
            assert "推荐" in text_of(page, "#export-quant", "推荐")

            page.get_by_role("tab", name=re.compile("评测|Evaluate")).click()
            board = text_of(page, "#leaderboard", "BT 评分")
            assert "BT rating" not in board and "票数不足（3/5 场对战）" in board
            assert page.get_by_text("3 票").first.is_visible()
        except Exception:
            screenshot(page, "messages-zh")
            raise


def after_the_journey(workspace, tiny_model_dir) -> None:
    """What the journey leaves in a workspace, made quickly: the shipped samples prepared and saved, a finished
    run with its log, its GGUFs with a round-trip report (Q8_0 diverging early, so the recommendation moves
    to F16), and three votes of base against the fine-tune."""
    from core.data import prepare
    from core.data.options import PrepareOptions
    from core.data.versions import save_version
    from core.models import packaged_gguf
    from core.workspace import Workspace

    samples = ROOT / "assets" / "samples"
    prepared = prepare([samples / "identity_alpaca.json", samples / "everyday_sharegpt.json"],
                       PrepareOptions(model="", near_dup_threshold=0))
    save_version(Workspace(workspace).ensure(), prepared, "kestrel")
    make_tiny_adapter_run(workspace, tiny_model_dir)
    run = workspace / "runs" / "tiny"
    finish_run(run)
    (run / "log.txt").write_text("".join(
        f"step {step}/30: loss={3 - step / 20:.3f}, learning_rate=0.0005, grad_norm=0.7, step_s=4.1, "
        f"tokens_per_s=140\n" for step in (10, 20, 30)) + "step 30/30: eval_loss=2.4\n")
    gguf = workspace / "exports" / "tiny" / "gguf"
    gguf.mkdir(parents=True)
    for quant in ("F16", "Q8_0"):
        (gguf / f"tiny-{quant}.gguf").symlink_to(packaged_gguf())
    prompts = ["What is the capital of France?", "Give me three tips for staying focused."]
    agree = {"agreement": 1.0, "first_divergence": [None, None], "texts": ["Paris.", "Rest."]}
    (gguf.parent / "roundtrip.json").write_text(json.dumps({
        "reference": "base+adapter", "prompts": prompts, "max_new_tokens": 24, "reference_texts": ["Paris.", "Rest."],
        "models": {"merged": agree, "F16": {**agree, "perplexity_vs_f16": 1.0},
                   "Q8_0": {"agreement": 0.7, "first_divergence": [2, 10], "texts": ["Lyon.", "Sleep."],
                            "perplexity_vs_f16": 0.999}}}))
    arena = Arena(workspace / "ratings.sqlite", rate_limit=None)
    for number, winner in enumerate("aab"):
        battle = arena.new_battle(["run/tiny", "default"], "What is your name?", f"rater-{number}")
        arena.save_answers(battle, "I'm Kestrel.", "I'm SmolLM.")
        arena.vote(battle, winner, f"rater-{number}", f"key-{number}")


ENGLISH_SENTENCE = re.compile(r"\b[A-Za-z][a-z']+(?:,? [A-Za-z][a-z']+){2,}\b")
"""Three or more English words in a row: a sentence, not a name, an id or a term such as "LoRA" or "GGUF"."""
NOT_PROSE = re.compile(
    r"“[^”]*”|\"[^\"]*\"|提示：.*"  # the check's own prompts, quoted or listed: text the model is asked, not UI
    r"|^(?:python -m|ollama|accelerate launch) .*$|lms import \S+"  # commands to copy
    r"|Built with Gradio|Use via API|Hugging Face Hub|My Models|Space", re.MULTILINE)  # footer, product names


def visible_text(page) -> str:
    """The page as a person reads it: rendered text and the values shown in inputs."""
    values = page.evaluate("() => [...document.querySelectorAll('input, textarea')]"
                           ".filter(e => e.offsetParent && e.type !== 'hidden').map(e => e.value)")
    return "\n".join([page.locator("body").inner_text(), *values])


def test_after_the_journey_a_chinese_browser_finds_no_english_sentence_in_any_tab(tmp_path, tiny_model_dir):
    require_chromium()
    workspace = tmp_path / "workspace"
    after_the_journey(workspace, tiny_model_dir)
    waits = {"数据": ("#data-report", "保留"), "训练": ("#train-progress", "已完成"), "导出": ("#export-roundtrip", "F16"),
             "对话": ("#chat-model input", "默认模型"), "评测": ("#leaderboard", "默认模型")}
    with running_app(workspace) as url, browser_page(locale="zh-CN") as page:
        page.goto(url)
        found = {}
        try:
            for tab, (selector, word) in waits.items():
                page.get_by_role("tab", name=re.compile(tab)).click()
                page.wait_for_function("([s, w]) => { const e = document.querySelector(s);"
                                       " return ((e?.value ?? e?.innerText) || '').includes(w); }", arg=[selector, word])
                page.wait_for_timeout(1500)  # the other handlers of opening the tab
                prose = NOT_PROSE.sub("", visible_text(page))
                found[tab] = [line for line in prose.splitlines() if ENGLISH_SENTENCE.search(line)]
            assert not any(found.values()), found
        except Exception:
            screenshot(page, "messages-zh-journey")
            raise


@pytest.mark.parametrize("locale, done", [("en-US", "Done"), ("zh-CN", "完成")])
def test_a_screen_reader_hears_done_not_a_raw_key_when_an_event_finishes(tmp_path, locale, done):
    """Gradio announces each finished event in a live region, through a translation key its own tables lack."""
    require_chromium()
    with running_app(tmp_path / "workspace") as url, browser_page(locale=locale) as page:
        page.goto(url)
        announced = set()
        for _ in range(40):  # the page's load events finish within seconds; announcements are rate-limited
            page.wait_for_timeout(250)
            announced |= set(page.evaluate("() => [...document.querySelectorAll('[aria-live]')]"
                                           ".map(e => e.innerText.trim()).filter(Boolean)"))
            if done in announced:
                break
        assert done in announced and not any("common." in text for text in announced), announced
