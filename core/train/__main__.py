"""Headless training: `python -m core.train CONFIG.yaml [KEY=VALUE ...] [--resume] [--workspace DIR]`.

CONFIG.yaml is any run's `config.yaml` (or one written by hand with `TrainSettings` fields); each
KEY=VALUE after it changes one setting (`learning_rate=1e-4 max_steps=50`), typed like the setting.
Without `--resume` a new run folder is made with those settings; with `--resume` the run that owns the
config continues from its newest complete checkpoint, as it was configured. The run goes through the
same job runner as the tab, so the folder, events and report are identical and the tab shows it live;
this command prints its log as it grows. Ctrl-C asks the run to stop (a checkpoint and the adapter are
saved). Exit status: 0 done, 1 failed, 2 bad input, 3 stopped or interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.errors import ChatsmithError
from core.jobs import LOG_FILE, STOP_FILE, JobRunner, State
from core.train import runs
from core.train.config_file import with_overrides
from core.train.start import run_params, start_run
from core.workspace import Workspace


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a run's config.yaml, or your own")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="change a setting of CONFIG for the new run, e.g. learning_rate=1e-4 max_steps=50")
    parser.add_argument("--resume", action="store_true", help="continue the run that owns CONFIG")
    parser.add_argument("--workspace", help="workspace folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    parser.add_argument("--name", default="", help="name of the new run folder")
    parser.add_argument("--direct", action="store_true",
                        help="train in this process (for accelerate launch), not through the job runner")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = with_overrides(runs.read_config(args.config), args.overrides)
        if args.overrides and args.resume:
            raise ChatsmithError("--resume continues a run as it was configured; KEY=VALUE changes start a new run.",
                                 "Drop --resume to train a new run with the changes.")
        workspace = Workspace.resolve(args.workspace or _workspace_of(args.config))
        jobs = JobRunner(workspace)
        if args.direct:
            return _train_here(args, settings, workspace)
        run_dir = start_run(workspace, jobs, settings, name=args.name, resume=args.resume,
                            folder=args.config.resolve().parent if args.resume else None).folder
    except ChatsmithError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"run folder: {run_dir}", flush=True)
    return _follow(jobs, run_dir)


def _workspace_of(config: Path) -> str | None:
    """A config inside `<workspace>/runs/<run>/` belongs to that workspace."""
    run_dir = config.resolve().parent
    return str(run_dir.parent.parent) if run_dir.parent.name == "runs" else None


def _train_here(args: argparse.Namespace, settings, workspace: Workspace) -> int:
    """Every process accelerate launches trains here; all agree on the run folder through --name."""
    from core.train import job

    if not args.name and not args.resume:
        raise ChatsmithError("--direct needs --name (or --resume), so every process writes the same run folder.")
    run_dir = args.config.resolve().parent if args.resume else workspace.runs / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    params = run_params(workspace, settings, resume=args.resume)
    job.run(DirectReporter(run_dir, params))  # the first process logs how it ended
    return 0


class DirectReporter:
    """The job context's duties for a process without a job runner; only the main process writes."""

    def __init__(self, folder: Path, params: dict):
        from core.train.job import main_process

        self.folder, self.params = folder, params
        self.main = main_process()

    def log(self, line: str) -> None:
        if self.main:
            print(line, flush=True)
            with open(self.folder / LOG_FILE, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def event(self, **metrics) -> None:
        if self.main:
            import json

            with open(self.folder / "events.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"time": round(time.time(), 3), **metrics}) + "\n")

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        pass

    def should_stop(self) -> bool:
        return (self.folder / STOP_FILE).exists()


def _follow(jobs: JobRunner, run_dir: Path) -> int:
    """Print the log as it grows until the job ends; Ctrl-C requests a graceful stop."""
    printed = (run_dir / LOG_FILE).stat().st_size if (run_dir / LOG_FILE).exists() else 0
    while True:
        try:
            snapshot = jobs.snapshot(run_dir)
            printed = _print_new(run_dir / LOG_FILE, printed)
            if snapshot.state.finished:
                break
            time.sleep(0.5)
        except KeyboardInterrupt:
            print("stop requested: saving a checkpoint and the adapter…", flush=True)
            jobs.request_stop(run_dir)
    _print_new(run_dir / LOG_FILE, printed)
    print(f"{snapshot.state.value}: {snapshot.error or snapshot.message}", flush=True)
    return {State.SUCCEEDED: 0, State.FAILED: 1}.get(snapshot.state, 3)


def _print_new(path: Path, offset: int) -> int:
    if not path.exists():
        return offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    sys.stdout.write(chunk.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    return offset + len(chunk)


if __name__ == "__main__":
    sys.exit(main())
