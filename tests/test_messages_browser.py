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
from tests.browser import browser_page, require_chromium, running_app, screenshot
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
