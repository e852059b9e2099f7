"""Run folders: the one module that knows their layout. Create, read, list, check for resume, compare.

Contract (Train, Export, Chat and Evaluate rely on it): `workspace.runs/<name>/` holds `config.yaml` (the
`TrainSettings`, with `model` and `dataset`; `read_config` returns them as `TrainSettings`),
`events.jsonl`, `log.txt`, `checkpoints/checkpoint-N/`, `adapter/` (PEFT adapter in safetensors +
tokenizer + chat template), `report.md`, and the job's `job.json` / `status.json`; a run that Export
fused from others has `fusion.json` (its sources and weights) instead of a job. A folder is a run when
it has a `config.yaml`; a run is finished when its adapter weights are saved (`run_folders`). A
checkpoint counts only when it carries the completion marker, so one cut short by a kill is never
resumed from. Reads never fail on a half-written run: missing parts read as empty.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core import atomic
from core.errors import BadInputError
from core.jobs import JOB_FILE, JobRunner, State, read_events

from core.train.settings import TrainSettings
from core.workspace import Workspace

CONFIG_FILE, REPORT_FILE, ADAPTER_DIR, CHECKPOINTS_DIR = "config.yaml", "report.md", "adapter", "checkpoints"
ADAPTER_WEIGHTS, FUSION_FILE = "adapter_model.safetensors", "fusion.json"
COMPLETE_MARKER = "chatsmith-complete"  # written last into a checkpoint folder, so a kill mid-save shows
CURVE_METRICS = ("loss", "eval_loss", "learning_rate")
PACE_STEPS = 3  # logged steps after the first that `pace` needs before it says how fast a run goes


def new_run_dir(workspace: Workspace, settings: TrainSettings, name: str = "") -> Path:
    """A fresh, unused run folder named after the time, model and dataset (or `name`)."""
    stem = name.strip() or "-".join([time.strftime("%Y%m%d-%H%M%S"), _short(settings.model),
                                     _short(Path(settings.dataset).name or "data")])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:80] or "run"
    folder, counter = workspace.runs / stem, 2
    while folder.exists():
        folder, counter = workspace.runs / f"{stem}-{counter}", counter + 1
    folder.mkdir(parents=True)
    return folder


def _short(text: str) -> str:
    return Path(text.rstrip("/")).name[:24] or "model"


def write_config(run_dir: Path, settings: TrainSettings, final_dir: Path | None = None) -> Path:
    """`config.yaml`, each knob under its reason; `final_dir` is where the folder will live when it is
    written in a temporary one."""
    from core.train.config_file import config_yaml

    text = config_yaml(settings, f"python -m core.train {(final_dir or run_dir) / CONFIG_FILE}")
    return atomic.write_text(run_dir / CONFIG_FILE, text)


def read_config(run_dir_or_file: Path) -> TrainSettings:
    """Settings from a run folder or a config file."""
    path = Path(run_dir_or_file)
    path = path / CONFIG_FILE if path.is_dir() else path
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise BadInputError(f"Cannot read {path}: {error}", "Pick a run folder that has a config.yaml.") from error
    return TrainSettings.from_dict(values)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints written to the end, oldest first."""
    found = [path.parent for path in (Path(run_dir) / CHECKPOINTS_DIR).glob(f"checkpoint-*/{COMPLETE_MARKER}")]
    return sorted((p for p in found if (p / "trainer_state.json").is_file()), key=_step_of)


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1])


def remove_incomplete_checkpoints(run_dir: Path) -> list[str]:
    """Move aside checkpoints a kill cut short, so the Trainer's own rotation never picks them."""
    complete = set(complete_checkpoints(run_dir))
    removed = []
    for folder in (Path(run_dir) / CHECKPOINTS_DIR).glob("checkpoint-*"):
        if folder not in complete:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


@dataclass(frozen=True)
class ResumeCheck:
    ok: bool
    reason: str
    checkpoint: Path | None = None


def resume_check(run_dir: Path, jobs: JobRunner) -> ResumeCheck:
    """Whether a run can continue, and from which checkpoint; otherwise why not."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        return ResumeCheck(False, "This folder has no config.yaml, so it is not a training run.")
    if (run_dir / JOB_FILE).is_file():
        state = jobs.snapshot(run_dir).state
        if not state.finished:
            return ResumeCheck(False, f"The run is still {state.value}.")
        if state is State.SUCCEEDED:
            return ResumeCheck(False, "The run finished all its steps; start a new run to train further.")
    checkpoints = complete_checkpoints(run_dir)
    if not checkpoints:
        return ResumeCheck(False, "No complete checkpoint was saved before the run ended; start it again.")
    newest = checkpoints[-1]
    if not (newest / "optimizer.pt").is_file() and not any(newest.glob("optimizer*")):
        return ResumeCheck(False, f"{newest.name} holds only model weights (no optimizer state), so training "
                                  "cannot continue exactly; start a new run.")
    return ResumeCheck(True, f"Resumes from {newest.name} (step {_step_of(newest)}).", newest)


def keep_events_until(run_dir: Path, step: int) -> int:
    """Drop events logged after `step` (the kill lost them with the checkpoint), so the curve continues."""
    events = read_events(run_dir)
    kept = [event for event in events if event.get("step", 0) <= step]
    if len(kept) != len(events):
        atomic.write_jsonl(Path(run_dir) / "events.jsonl", kept)
    return len(events) - len(kept)


def pace(events: list[dict[str, Any]], enough: int | None = PACE_STEPS) -> dict[str, Any] | None:
    """How fast the run's logged steps went: {"step_s", "tokens_per_s", "first_step", "after_step"} over the
    first `enough` steps past the first (the early pace a run's ETA is projected from), or over every
    step logged so far (`enough=None`); None until `PACE_STEPS` steps past the first are logged.

    Step 1 pays for warm-up (allocations, kernel choice), so a logged span that includes it is left out, as
    is everything before it (loading the model and data); each later logged event covers the steps since
    the one before it and is weighted by them. Evaluations log no `step_s` and are not counted.
    """
    seconds = tokens = covered = 0.0
    previous, first, last = 0, None, None
    for event in events:
        if "step_s" not in event:
            continue
        step, span = event["step"], event["step"] - previous
        if previous > 0 and span > 0:
            first = previous + 1 if first is None else first
            seconds += event["step_s"] * span
            tokens += event.get("tokens_per_s", 0.0) * event["step_s"] * span
            covered, last = covered + span, step
            if enough is not None and covered >= enough:
                break
        previous = step
    if covered < PACE_STEPS or seconds <= 0:
        return None
    return {"step_s": seconds / covered, "tokens_per_s": round(tokens / seconds, 1), "first_step": first,
            "after_step": last}


def early_pace(run_dir: Path, total_steps: int) -> dict[str, Any] | None:
    """The whole run's time projected from the pace of its first steps: `pace` plus "eta_s"."""
    found = pace(read_events(run_dir))
    return found and {**found, "eta_s": round(found["step_s"] * total_steps, 1)}


def time_left(events: list[dict[str, Any]], step: int, total: int, elapsed_s: float | None = None) -> float | None:
    """Seconds a run has left at the pace of its steps so far, plus its evaluations still to come at the
    length of those it logged. Unlike the time elapsed, that pace leaves out loading the model (at the
    start and on a resume) and the first step; a run that has logged too few steps for it is paced by
    `elapsed_s` over `step` instead, when given, and is None otherwise."""
    if found := pace(events, enough=None):
        steps_s = found["step_s"] * max(0, total - step)
    elif elapsed_s is not None and step:
        steps_s = elapsed_s / step * max(0, total - step)
    else:
        return None
    return steps_s + _evaluations_left(events, step, total)


def _evaluations_left(events: list[dict[str, Any]], step: int, total: int) -> float:
    """Seconds the run's evaluations after `step` will take, each as long as the median one it logged; 0
    until it has logged one. Evaluations fall every N steps and at the end, and the first logged one is
    the first of that schedule, so its step is N (a run that only evaluates at the end logs it there)."""
    timed = [event for event in events if event.get("eval_s")]
    if not timed or step >= total:
        return 0.0
    every = max(1, int(timed[0]["step"]))
    count = total // every - step // every + (1 if total % every else 0)
    return count * statistics.median(event["eval_s"] for event in timed)


# --- listing and comparing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    state: str
    step: int
    total: int | None
    model: str
    dataset: str
    final_loss: float | None
    final_eval_loss: float | None
    tokens_per_s: float | None


def run_folders(workspace: Workspace, finished: bool = False) -> list[Path]:
    """Every run folder (one with a config), newest first; `finished`: only those with saved adapter weights."""
    folders = [config.parent for config in workspace.runs.glob(f"*/{CONFIG_FILE}")
               if not finished or (config.parent / ADAPTER_DIR / ADAPTER_WEIGHTS).is_file()]
    return sorted(folders, key=lambda folder: folder.stat().st_mtime, reverse=True)


def saved_adapters(workspace: Workspace) -> list[Path]:
    """Every run's saved adapter folder (one with its adapter_config.json), by run name: what Chat and the
    Arena can load, even from a run whose config.yaml went missing."""
    return sorted(config.parent for config in workspace.runs.glob(f"*/{ADAPTER_DIR}/adapter_config.json"))


def list_runs(workspace: Workspace, jobs: JobRunner) -> list[RunSummary]:
    """Every run folder with a readable config, newest first, with its state and final metrics."""
    summaries = []
    for folder in run_folders(workspace):
        snapshot = jobs.snapshot(folder) if (folder / JOB_FILE).is_file() else None
        try:
            settings = read_config(folder)
        except BadInputError:
            continue
        state = snapshot.state.value if snapshot else "fused" if (folder / FUSION_FILE).is_file() else "not started"
        summaries.append(RunSummary(
            name=folder.name, path=folder, state=state, step=snapshot.step if snapshot else 0,
            total=snapshot.total if snapshot else None, model=settings.model, dataset=settings.dataset,
            **final_metrics(folder)))
    return summaries


def final_metrics(run_dir: Path) -> dict[str, float | None]:
    events = read_events(run_dir)

    def last(key: str) -> float | None:
        return next((event[key] for event in reversed(events) if key in event), None)

    return {"final_loss": last("loss"), "final_eval_loss": last("eval_loss"), "tokens_per_s": last("tokens_per_s")}


def curves(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Long-format rows (run, step, metric, value) for one overlaid line plot."""
    rows = []
    for folder in run_dirs:
        for event in read_events(folder):
            for metric in CURVE_METRICS:
                if metric in event:
                    rows.append({"run": Path(folder).name, "step": event["step"], "metric": metric,
                                 "value": float(event[metric])})
    return rows


def config_diff(run_dirs: list[Path]) -> list[list[str]]:
    """[setting, value in run 1, value in run 2, ...] for every setting that differs."""
    configs = [read_config(folder).to_dict() for folder in run_dirs]
    keys = [key for key in configs[0] if len({json.dumps(config.get(key)) for config in configs}) > 1]
    return [[key, *[str(config.get(key)) for config in configs]] for key in keys]


def metrics_table(run_dirs: list[Path]) -> list[list[Any]]:
    rows = []
    for folder in run_dirs:
        metrics = final_metrics(folder)
        rows.append([Path(folder).name, metrics["final_loss"], metrics["final_eval_loss"], metrics["tokens_per_s"]])
    return rows
