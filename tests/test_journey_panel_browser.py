"""In a real browser: the guided first run's panel states the fine-tune's time on this machine once its
first steps are done, says the page may be closed, and shows a progress bar with the time left.

The journey's job folders are written as their workers write them, so nothing trains here; the pace of
the first steps and the report it feeds are covered by tests/test_journey.py.
"""

from __future__ import annotations

import time

import psutil
import pytest

from core import atomic, journey
from core.workspace import Workspace
from tests.browser import browser_page, require_chromium, running_app
from tests.browser_fixtures import write_journey

pytestmark = pytest.mark.browser
PROGRESS = "#journey-progress"


def write_training(workspace: Workspace, step: int, total: int, elapsed_s: float) -> None:
    folder = workspace.runs / journey.RUN_NAME
    me = psutil.Process()
    atomic.write_json(folder / "job.json", {"kind": "train", "title": "Train", "created": 0})
    atomic.write_json(folder / "status.json", {"state": "running", "step": step, "total": total, "message": "",
                                               "started": time.time() - elapsed_s, "pid": me.pid,
                                               "pid_started": me.create_time()})


def bar_value(page) -> float:
    return float(page.locator(f"{PROGRESS} progress").get_attribute("value"))


def test_the_panel_states_the_time_from_the_first_steps_then_shows_a_bar_with_the_time_left(tmp_path):
    require_chromium()
    workspace = Workspace(tmp_path / "workspace").ensure()
    started = [{"step": "data", "state": "done", "dataset": "kestrel"}, {"step": "train", "state": "running"}]
    write_journey(workspace, started, "running")
    write_training(workspace, step=2, total=30, elapsed_s=30)
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        journey_panel = page.locator("#journey")
        page.wait_for_function("() => /step 2 of 30 · measuring this machine's speed/.test("
                               "document.querySelector('#journey-progress')?.innerText || '')")
        assert "You may close this page" in journey_panel.inner_text()
        before = bar_value(page)

        write_journey(workspace, [*started, {"step": "train", "state": "running", "eta_s": 420.0,
                                             "tokens_per_s": 50.0}], "running")
        # Three minutes went on loading, then 10 s a step: 18 steps, 3 minutes, are left (the time elapsed,
        # 300 s for 12 steps, would say 8 minutes).
        atomic.write_jsonl(workspace.runs / journey.RUN_NAME / "events.jsonl",
                           [{"step": step, "loss": 2.0, "step_s": 40.0 if step == 1 else 10.0}
                            for step in (1, *range(2, 13, 2))])
        write_training(workspace, step=12, total=30, elapsed_s=300)
        page.wait_for_function("() => /step 12 of 30/.test(document.querySelector('#journey-progress')?.innerText"
                               " || '')")
        assert "about 3 minutes left" in page.locator(PROGRESS).inner_text()
        page.wait_for_function("() => /about 7 minutes on this machine/.test("
                               "document.querySelector('#journey-status')?.innerText || '')")
        assert before < bar_value(page) < 1.0


def panel_height(page) -> float:
    return page.locator("#journey").bounding_box()["height"]


def test_the_panel_is_open_on_a_fresh_workspace_and_folds_after_a_finished_journey(tmp_path):
    """On a 1440×900 screen the panel takes the top of every tab only until a journey has run; Stop shows
    only while something runs."""
    require_chromium()
    fresh = Workspace(tmp_path / "fresh").ensure()
    with running_app(fresh.root) as url, browser_page() as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(url)
        page.locator("#journey-start").wait_for()  # open: the start button shows
        assert page.locator("#journey-start").is_visible()
        assert not page.locator("#journey-stop").is_visible()
        open_height = panel_height(page)

    finished = Workspace(tmp_path / "finished").ensure()
    write_journey(finished, [{"step": step, "state": "done"} for step in journey.STEPS], "succeeded")
    with running_app(finished.root) as url, browser_page() as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(url)
        page.locator("#journey").get_by_text("New here? Try the whole journey").wait_for()
        page.wait_for_timeout(1000)  # the page-load event has set the panel by now
        assert not page.locator("#journey-start").is_visible()
        assert not page.locator("#journey-stop").is_visible()
        assert panel_height(page) < open_height / 3, (panel_height(page), open_height)


def test_stop_shows_while_a_journey_runs(tmp_path):
    require_chromium()
    workspace = Workspace(tmp_path / "workspace").ensure()
    write_journey(workspace, [{"step": "data", "state": "running"}], "running")
    with running_app(workspace.root) as url, browser_page() as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(url)
        page.locator("#journey-stop").wait_for(state="visible")
        write_journey(workspace, [{"step": step, "state": "done"} for step in journey.STEPS], "succeeded")
        page.locator("#journey-stop").wait_for(state="hidden", timeout=30_000)
