"""The job runner: progress, stop, crash, kill -9 and one heavy job at a time."""

import os
import signal

import pytest

from core.errors import JobBusyError
from core.jobs import JobRunner, State
from tests.waiting import wait_for


@pytest.fixture
def runner(workspace):
    return JobRunner(workspace)




def test_job_reports_progress_events_and_result(runner, workspace):
    folder = workspace.jobs / "count"
    runner.submit(folder, "tests.job_targets:count", {"steps": 5, "delay": 0.01}, kind="test", title="Count")
    job = runner.wait(folder, timeout_s=60)
    assert job.state is State.SUCCEEDED
    assert job.result == {"message": "counted", "last_step": 5}
    assert [event["step"] for event in job.events()] == [1, 2, 3, 4, 5]
    assert job.elapsed_s > 0
    assert [j.title for j in runner.list()] == ["Count"]


def test_stop_request_is_honoured(runner, workspace):
    folder = workspace.jobs / "long"
    runner.submit(folder, "tests.job_targets:count", {"steps": 1000, "delay": 0.05}, kind="test", title="Long")
    assert wait_for(lambda: len(runner.snapshot(folder).events()) >= 3)
    runner.request_stop(folder)
    job = runner.wait(folder, timeout_s=30)
    assert job.state is State.STOPPED
    assert 3 <= job.result["last_step"] < 1000
    assert "stopping at step" in job.log_tail()


def test_crash_shows_as_failed_with_the_error(runner, workspace):
    folder = workspace.jobs / "crash"
    runner.submit(folder, "tests.job_targets:crash", {}, kind="test", title="Crash")
    job = runner.wait(folder, timeout_s=60)
    assert job.state is State.FAILED
    assert "boom in the worker" in job.error
    assert "about to fail" in job.log_tail()


def test_killed_worker_shows_as_interrupted_after_restart(runner, workspace):
    folder = workspace.jobs / "victim"
    runner.submit(folder, "tests.job_targets:count", {"steps": 1000, "delay": 0.05}, kind="test", title="Victim")
    assert wait_for(lambda: runner.snapshot(folder).state is State.RUNNING)
    os.killpg(runner_pid(folder), signal.SIGKILL)
    # A new runner stands for the app after a restart: it only has the folders to go on.
    assert wait_for(lambda: JobRunner(workspace).snapshot(folder).state is State.INTERRUPTED)
    assert JobRunner(workspace).list()[0].state is State.INTERRUPTED


def test_second_heavy_job_queues_then_runs(runner, workspace):
    first, second = workspace.runs / "first", workspace.runs / "second"
    runner.submit(first, "tests.job_targets:count", {"steps": 30, "delay": 0.05}, kind="train", title="First",
                  heavy=True)
    assert wait_for(lambda: runner.snapshot(first).state is State.RUNNING)
    runner.submit(second, "tests.job_targets:count", {"steps": 2, "delay": 0.01}, kind="train", title="Second",
                  heavy=True)
    assert wait_for(lambda: "Queued" in runner.snapshot(second).message)
    assert runner.snapshot(second).state is State.QUEUED
    with pytest.raises(JobBusyError, match="First"):
        runner.submit(workspace.runs / "third", "tests.job_targets:count", {"steps": 1}, kind="train",
                      title="Third", heavy=True, exclusive=True)
    assert runner.wait(first, timeout_s=60).state is State.SUCCEEDED
    assert runner.wait(second, timeout_s=60).state is State.SUCCEEDED


def test_killed_heavy_job_leaves_no_orphaned_lock(runner, workspace):
    first, second = workspace.runs / "dies", workspace.runs / "after"
    runner.submit(first, "tests.job_targets:count", {"steps": 1000, "delay": 0.05}, kind="train",
                  title="Dies", heavy=True)
    assert wait_for(lambda: runner.snapshot(first).state is State.RUNNING)
    os.killpg(runner_pid(first), signal.SIGKILL)
    runner.submit(second, "tests.job_targets:count", {"steps": 2, "delay": 0.01}, kind="train", title="After",
                  heavy=True)
    assert runner.wait(second, timeout_s=60).state is State.SUCCEEDED


def test_resubmitting_a_running_job_is_refused(runner, workspace):
    folder = workspace.jobs / "once"
    runner.submit(folder, "tests.job_targets:count", {"steps": 100, "delay": 0.05}, kind="test", title="Once")
    with pytest.raises(JobBusyError, match="already"):
        runner.submit(folder, "tests.job_targets:count", {"steps": 1}, kind="test", title="Once")
    runner.request_stop(folder)
    runner.wait(folder)


def runner_pid(folder):
    import json

    return json.loads((folder / "status.json").read_text())["pid"]
