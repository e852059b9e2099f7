"""One job model for every long task: training, export, evaluation batches.

A job is a folder. `job.json` says what to run (a `module:function` target and its JSON parameters);
the worker is a separate process (`python -m core.jobs FOLDER`) started in its own session, so it keeps
going when the browser tab closes or the app restarts. The worker writes:

* `status.json` — state, step / total, message, error; replaced atomically, read by the UI's poll;
* `events.jsonl` — one JSON object per metric event (loss, learning rate, tokens/s, ...), appended;
* `log.txt`     — human-readable log lines (the worker's stdout and stderr go there too).

This module starts, lists, polls and stops jobs (`JobRunner`); what runs inside the worker is
`core.job_worker`. A stop is requested by creating `stop.requested`; targets poll `JobContext.should_stop()` and finish
gracefully (training saves a checkpoint first). Jobs marked `heavy` take the workspace's accelerator
lock, an `flock` that the OS releases when the holder dies, so only one heavy job runs at a time, later
ones wait as "queued", and a crashed worker never leaves an orphaned lock. A job
whose status says running or queued but whose process is gone is reported as interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import JobBusyError
from core.job_worker import (EVENTS_FILE, JOB_FILE, LOG_FILE, STATUS_FILE, STOP_FILE, JobContext, State,
                             process_start, read_events, read_json, run_worker, tail)
from core.workspace import Workspace

__all__ = ["EVENTS_FILE", "JOB_FILE", "LOG_FILE", "STATUS_FILE", "STOP_FILE", "JobContext", "JobRunner",
           "JobSnapshot", "State", "read_events", "run_worker", "tail"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class JobSnapshot:
    """What the UI shows of a job at one moment."""

    folder: Path
    kind: str
    title: str
    state: State
    step: int = 0
    total: int | None = None
    message: str = ""
    error: str = ""
    created: float = 0.0
    started: float | None = None
    ended: float | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.time()) - self.started

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.folder)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.folder / LOG_FILE, lines)



class JobRunner:
    """Starts, lists, polls and stops jobs in one workspace. Holds no state of its own."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    def submit(self, folder: Path, target: str, params: dict[str, Any], *, kind: str, title: str,
               heavy: bool = False, exclusive: bool = False) -> JobSnapshot:
        """Start `target(ctx)` in a worker process. `exclusive` refuses instead of queueing."""
        folder = Path(folder)
        current = self.snapshot(folder) if (folder / STATUS_FILE).exists() else None
        if current and not current.state.finished:
            raise JobBusyError(f"'{current.title}' is already {current.state.value}.",
                               "Wait for it to finish or stop it first.")
        if heavy and exclusive and (busy := self.heavy_job()):
            raise JobBusyError(f"'{busy.title}' is using the accelerator ({busy.state.value}).",
                               "Wait for it to finish or stop it, then try again.")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / STOP_FILE).unlink(missing_ok=True)
        spec = {"target": target, "params": params, "kind": kind, "title": title, "heavy": heavy,
                "created": time.time()}
        atomic.write_json(folder / JOB_FILE, spec)
        atomic.write_json(folder / STATUS_FILE, {"state": State.QUEUED.value, "step": 0, "total": None,
                                                 "message": "Starting…", "pid": None})
        with open(folder / LOG_FILE, "a", encoding="utf-8") as log:
            process = subprocess.Popen(
                [sys.executable, "-u", "-m", "core.jobs", str(folder)],
                cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, "PYTHONPATH": _pythonpath()},
            )
        threading.Thread(target=process.wait, daemon=True).start()  # reap it, so it never lingers as a zombie
        _merge_status(folder, pid=process.pid, pid_started=process_start(process.pid))
        return self.snapshot(folder)

    def snapshot(self, folder: Path) -> JobSnapshot:
        folder = Path(folder)
        spec, status = read_json(folder / JOB_FILE), read_json(folder / STATUS_FILE)
        state = State(status.get("state", State.INTERRUPTED.value))
        starting = status.get("pid") is None and time.time() - spec.get("created", 0) < 10
        if not state.finished and not starting and not _alive(status.get("pid"), status.get("pid_started")):
            state = State.INTERRUPTED
        return JobSnapshot(
            folder=folder, kind=spec.get("kind", ""), title=spec.get("title", folder.name), state=state,
            step=status.get("step", 0), total=status.get("total"), message=status.get("message", ""),
            error=status.get("error", ""), created=spec.get("created", 0.0), started=status.get("started"),
            ended=status.get("ended"), result=status.get("result") or {},
        )

    def list(self, kind: str | None = None) -> list[JobSnapshot]:
        """Every job in the workspace, newest first; dead ones show as interrupted, so an app restart offers resume."""
        folders = [path.parent for root in (self.workspace.runs, self.workspace.jobs, self.workspace.exports)
                   for path in root.glob(f"*/{JOB_FILE}")]
        jobs = [self.snapshot(folder) for folder in folders]
        return sorted((job for job in jobs if kind is None or job.kind == kind),
                      key=lambda job: job.created, reverse=True)

    def heavy_job(self) -> JobSnapshot | None:
        """The heavy job holding the accelerator (else one waiting for it), if any."""
        active = [job for job in self.list()
                  if not job.state.finished and read_json(job.folder / JOB_FILE).get("heavy")]
        return min(active, key=lambda job: job.state is not State.RUNNING, default=None)

    def request_stop(self, folder: Path) -> None:
        (Path(folder) / STOP_FILE).touch()

    def kill(self, folder: Path) -> None:
        """Hard stop, for a job that ignores its stop request."""
        status = read_json(Path(folder) / STATUS_FILE)
        if _alive(status.get("pid"), status.get("pid_started")):
            os.killpg(status["pid"], signal.SIGKILL)

    def wait(self, folder: Path, timeout_s: float = 600.0, poll_s: float = 0.2) -> JobSnapshot:
        deadline = time.time() + timeout_s
        while True:
            job = self.snapshot(folder)
            if job.state.finished or time.time() > deadline:
                return job
            time.sleep(poll_s)



def _merge_status(folder: Path, **values: Any) -> None:
    status = read_json(folder / STATUS_FILE)
    status.update(values)
    atomic.write_json(folder / STATUS_FILE, status)



def _alive(pid: int | None, started: float | None) -> bool:
    """True if `pid` is running and is the process we started (not a reused pid)."""
    import psutil

    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.Error:
        return False


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join(filter(None, [str(PROJECT_ROOT), existing]))


if __name__ == "__main__":
    sys.exit(run_worker(Path(sys.argv[1]).resolve()))
