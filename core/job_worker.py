"""The worker side of a job: what runs in `python -m core.jobs FOLDER`, and the files it writes.

Contract: `run_worker(folder)` reads `job.json`, takes the accelerator lock when the job is heavy (an
`flock` the OS releases when the process dies; a stop request while queued ends the wait), calls the
`module:function` target with a `JobContext` and records how it ended in `status.json`: succeeded,
stopped or failed with the error in words. A target reports through its `JobContext`: `log` (a line in
`log.txt`), `event` (a JSON line in `events.jsonl`), `progress` (step / total / message in `status.json`,
step counts throttled) and `should_stop`. `read_events` and `tail` read those files back for the UI.
`core.jobs` starts workers and reads their state; it re-exports everything here that callers use.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import time
import traceback
from enum import Enum
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import describe

JOB_FILE, STATUS_FILE, EVENTS_FILE, LOG_FILE, STOP_FILE = (
    "job.json", "status.json", "events.jsonl", "log.txt", "stop.requested")
STATUS_INTERVAL_S = 0.5  # progress writes are throttled to this; final states are always written


class State(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (State.QUEUED, State.RUNNING)



class JobContext:
    """Handed to a job's target inside the worker: its parameters and the ways to report back."""

    def __init__(self, folder: Path, params: dict[str, Any]):
        self.folder = folder
        self.params = params
        self._status: dict[str, Any] = read_json(folder / STATUS_FILE)
        self._last_write = 0.0

    def log(self, line: str) -> None:
        print(line, flush=True)  # stdout is log.txt

    def event(self, **metrics: Any) -> None:
        record = {"time": round(time.time(), 3), **metrics}
        with open(self.folder / EVENTS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        # A new phase (message) or length (total) is written at once; only step counts are throttled,
        # so a short phase such as "loading the model" is never lost between two writes.
        new_phase = (total is not None and total != self._status.get("total")) or \
            (message is not None and message != self._status.get("message"))
        self._status["step"] = step
        if total is not None:
            self._status["total"] = total
        if message is not None:
            self._status["message"] = message
        if new_phase or time.time() - self._last_write >= STATUS_INTERVAL_S:
            self._write()

    def should_stop(self) -> bool:
        return (self.folder / STOP_FILE).exists()

    def _set(self, **values: Any) -> None:
        self._status.update(values)
        self._write()

    def _write(self) -> None:
        atomic.write_json(self.folder / STATUS_FILE, self._status)
        self._last_write = time.time()


def read_events(folder: Path) -> list[dict[str, Any]]:
    """All complete event lines; a line half-written at this instant is skipped, not an error."""
    path = Path(folder) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 64 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def run_worker(folder: Path) -> int:
    """The worker process: wait for the accelerator if heavy, run the target, record how it ended."""
    spec = read_json(folder / JOB_FILE)
    context = JobContext(folder, spec["params"])
    lock_handle = None
    try:
        context._set(pid=os.getpid(), pid_started=process_start(os.getpid()))
        if spec.get("heavy"):
            lock_handle = _acquire_accelerator(folder, context)
            if lock_handle is None:
                context._set(state=State.STOPPED.value, ended=time.time(), message="Stopped while queued.")
                return 0
        context._set(state=State.RUNNING.value, started=time.time(), message="Running…")
        module_name, function_name = spec["target"].split(":")
        result = getattr(importlib.import_module(module_name), function_name)(context)
        stopped = context.should_stop()
        context._set(state=(State.STOPPED if stopped else State.SUCCEEDED).value, ended=time.time(),
                     result=result or {}, message=(result or {}).get("message", "Stopped." if stopped else "Done."))
        return 0
    except BaseException as error:  # noqa: BLE001 - every failure must reach status.json
        traceback.print_exc()
        context._set(state=State.FAILED.value, ended=time.time(), error=describe(error),
                     message="Failed.")
        return 1
    finally:
        if lock_handle is not None:
            lock_handle.close()


def _acquire_accelerator(folder: Path, context: JobContext):
    lock_path = folder.parent.parent / "jobs" / "accelerator.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "w")
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if context.should_stop():
                handle.close()
                return None
            context._set(message="Queued: waiting for the running job to release the accelerator.")
            time.sleep(1.0)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}



def process_start(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None

