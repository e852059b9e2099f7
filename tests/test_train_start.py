"""Starting a run: one function refuses what would fail before a folder exists, and every caller uses it."""

from __future__ import annotations

import json
import time

import pytest

from core.errors import BadInputError
from core.jobs import JobRunner
from core.train import runs, start
from core.train import __main__ as train_cli
from core.train.settings import TrainSettings


def _finished_run(workspace, name: str, state: str, checkpoint: bool) -> None:
    run_dir = workspace.runs / name
    run_dir.mkdir(parents=True)
    runs.write_config(run_dir, TrainSettings(dataset="/d/v1"))
    (run_dir / "job.json").write_text(json.dumps({"kind": "train", "title": name, "created": time.time(),
                                                  "target": start.TARGET, "params": {}}))
    (run_dir / "status.json").write_text(json.dumps({"state": state}))
    if checkpoint:
        folder = run_dir / runs.CHECKPOINTS_DIR / "checkpoint-2"
        folder.mkdir(parents=True)
        for file_name in ("trainer_state.json", "optimizer.pt", runs.COMPLETE_MARKER):
            (folder / file_name).write_text("{}")
    return run_dir


def test_a_missing_dataset_is_refused_before_a_run_folder_exists(workspace):
    with pytest.raises(BadInputError, match="No train.jsonl"):
        start.start_run(workspace, JobRunner(workspace), TrainSettings(dataset=str(workspace.datasets / "gone")))
    assert list(workspace.runs.iterdir()) == []


def test_the_command_line_refuses_a_missing_dataset_without_leaving_a_run(workspace):
    config = workspace.root / "mine.yaml"
    config.write_text(f"dataset: {workspace.datasets / 'gone'}\nmax_steps: 2\n")

    assert train_cli.main([str(config), "--workspace", str(workspace.root)]) == 2
    assert list(workspace.runs.iterdir()) == []


def test_resume_is_refused_with_the_reason_when_no_checkpoint_was_saved(workspace):
    run_dir = _finished_run(workspace, "cut-short", "interrupted", checkpoint=False)

    with pytest.raises(BadInputError, match="Cannot resume cut-short: No complete checkpoint"):
        start.start_run(workspace, JobRunner(workspace), TrainSettings(dataset="/d/v1"), folder=run_dir,
                        resume=True)


def test_guided_flows_resume_only_a_stopped_run_that_can_continue(workspace):
    jobs = JobRunner(workspace)

    assert start.should_resume(jobs, _finished_run(workspace, "stopped", "stopped", checkpoint=True))
    assert not start.should_resume(jobs, _finished_run(workspace, "no-checkpoint", "stopped", checkpoint=False))
    assert not start.should_resume(jobs, _finished_run(workspace, "failed", "failed", checkpoint=True))
    assert not start.should_resume(jobs, workspace.runs / "never-started")
