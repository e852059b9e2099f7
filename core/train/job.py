"""Job-runner targets of the Train stage: `run` (a training run in its run folder) and `probe`.

Contract: `run(ctx)` takes `ctx.params` = {"settings": TrainSettings as a dict, "workspace": root,
"resume": bool, "eta_s": pre-flight ETA or None (then the pace of the first steps gives one),
"price_per_kwh": float, "currency": str}; the job folder is the run folder. It writes `config.yaml`,
trains (events, log and checkpoints land in the folder through the callbacks), saves the adapter and
writes `report.md`. On resume it continues from the newest complete checkpoint and first drops events
logged after it, so the curve continues.
`probe(ctx)` runs a few steps in a scratch folder and returns measured tokens/s for the ETA.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import BadInputError
from core.train import recipe, runs
from core.train.settings import TrainSettings
from core.workspace import Workspace


def run(ctx: Any) -> dict[str, Any]:
    params = ctx.params
    settings = TrainSettings.from_dict(params["settings"])
    run_dir, workspace = Path(ctx.folder), Workspace(Path(params["workspace"])).ensure()
    checkpoint = _prepare_resume(run_dir, ctx) if params.get("resume") else None
    if checkpoint is None and main_process():
        runs.write_config(run_dir, settings)
    ctx.log(f"{'resuming' if checkpoint else 'starting'} run {run_dir.name}: {settings.model} on {settings.dataset}")
    summary = recipe_for(settings)(settings, run_dir, workspace, ctx, resume_from=checkpoint)
    eta, summary["eta_source"] = _eta(run_dir, summary, params, resumed=checkpoint is not None)
    if eta:  # the promise against what happened, kept with the run
        summary.update(eta_s=eta, eta_error=round((summary["duration_s"] - eta) / eta, 3))
    if main_process():
        atomic.write_text(run_dir / runs.REPORT_FILE, report(run_dir, settings, summary, params))
    if summary["stopped_at"] is not None:
        message = f"Stopped at step {summary['stopped_at']}: checkpoint and adapter saved; Resume continues it."
    else:
        message = f"Done: {summary['step']} steps in {summary['duration_s']:.0f} s; adapter saved."
    ctx.log(message)
    return {"message": message, **summary}


def _eta(run_dir: Path, summary: dict[str, Any], params: dict[str, Any], resumed: bool) -> tuple[float | None, str]:
    """The run's expected duration and where it came from: the pre-flight's estimate when one was given,
    else the pace of the run's own first steps (a resumed run's session has no first steps of its own)."""
    if params.get("eta_s"):
        return params["eta_s"], "estimated"
    pace = None if resumed else runs.early_pace(run_dir, summary["max_steps"])
    if pace is None:
        return None, ""
    return pace["eta_s"], f"projected from steps {pace['first_step']}–{pace['after_step']}"


def recipe_for(settings: TrainSettings):
    """SFT's recipe, or the DPO / KTO one: same arguments, same run folder, same summary."""
    if settings.method == "sft":
        return recipe.train
    from core.train import preference

    return preference.train


def main_process() -> bool:
    """False in the other processes `accelerate launch` starts: they train, the first one writes the run's files."""
    return os.environ.get("RANK", "0") == "0"


def _prepare_resume(run_dir: Path, ctx: Any) -> Path:
    # Every process resumes from the newest marked checkpoint; only the first one tidies the folder.
    removed = runs.remove_incomplete_checkpoints(run_dir) if main_process() else []
    if removed:
        ctx.log(f"ignored incomplete checkpoint(s) cut short by a kill: {', '.join(removed)}")
    checkpoints = runs.complete_checkpoints(run_dir)
    if not checkpoints:
        raise BadInputError(f"Run {run_dir.name} has no complete checkpoint to resume from.", "Start it again.")
    step = int(checkpoints[-1].name.rsplit("-", 1)[-1])
    if main_process():
        dropped = runs.keep_events_until(run_dir, step)
        ctx.log(f"resuming from {checkpoints[-1].name}; {dropped} event(s) after step {step} dropped")
    return checkpoints[-1]


def probe(ctx: Any) -> dict[str, Any]:
    """A few real steps on the real data, to measure tokens/s; the scratch checkpoints are removed."""
    settings = TrainSettings.from_dict(ctx.params["settings"])
    workspace = Workspace(Path(ctx.params["workspace"])).ensure()
    steps = int(ctx.params.get("steps", 3))
    ctx.progress(0, steps + 1, "loading the model and data")  # "step 0 of n" from the start, not a bare "Running"
    summary = recipe_for(settings)(settings, Path(ctx.folder), workspace, ctx, max_steps_override=steps + 1)
    shutil.rmtree(Path(ctx.folder) / runs.CHECKPOINTS_DIR, ignore_errors=True)
    events = [event for event in ctx_events(ctx) if "tokens_per_s" in event and event["step"] > 1]
    # The first step pays for warm-up (allocations, kernel choice); later steps are what a run sees.
    speed = sum(event["tokens_per_s"] for event in events) / len(events) if events else 0.0
    return {"message": f"Probe: {speed:.0f} real tokens/s", "tokens_per_s": speed,
            "memory_gb": max((event.get("memory_gb", 0) for event in ctx_events(ctx)), default=0.0),
            "trainable_params": summary["trainable_params"], "total_params": summary["total_params"]}


def ctx_events(ctx: Any) -> list[dict[str, Any]]:
    from core.jobs import read_events

    return read_events(Path(ctx.folder))


def report(run_dir: Path, settings: TrainSettings, summary: dict[str, Any], params: dict[str, Any]) -> str:
    """report.md: what ran, how it ended, how long against the ETA, and what it cost."""
    metrics = runs.final_metrics(run_dir)
    duration = summary["duration_s"]
    eta = summary.get("eta_s")
    eta_line = (f"{eta:.0f} s {summary['eta_source']} vs {duration:.0f} s real ({summary['eta_error']:+.0%} error)"
                if eta else "no estimate (no pre-flight, and too few steps to project one)")
    energy_kwh = summary["energy_wh"] / 1000
    price, currency = float(params.get("price_per_kwh") or 0), params.get("currency") or ""
    ended = (f"stopped at step {summary['stopped_at']}" if summary["stopped_at"] is not None
             else f"finished {summary['step']} of {summary['max_steps']} steps")
    rows = [("Model", settings.model), ("Dataset", settings.dataset), ("Ended", ended),
            ("Final loss", _fmt(metrics["final_loss"])), ("Final eval loss", _fmt(metrics["final_eval_loss"])),
            ("Parameters", f"{summary['total_params'] / 1e6:.1f}M, {summary['trainable_params'] / 1e6:.2f}M trainable"),
            ("Device", f"{summary['device']} · {summary['precision']}"), ("TRL", summary.get("trl", "")),
            ("Duration (this session)", f"{duration:.0f} s"), ("ETA accuracy", eta_line),
            ("Real tokens", f"{summary['real_tokens']:,}"),
            ("Energy", f"{summary['energy_wh']:.2f} Wh ≈ {energy_kwh * price:.4f} {currency} at {price} "
                       f"{currency}/kWh" if price > 0 else f"{summary['energy_wh']:.2f} Wh (no price per kWh was set, so no cost)")]
    if settings.method != "sft":
        rows.insert(1, ("Method", f"{settings.method.upper()} (beta {settings.beta})"
                                  + (f", from {settings.start_from}" if settings.start_from else "")))
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    check = _check_lines(summary.get("preference_check"))
    return (f"# Training run {run_dir.name}\n\n_{time.strftime('%Y-%m-%d %H:%M:%S')}_\n\n| | |\n|---|---|\n{table}\n\n"
            f"{check}Repeat without the UI: `python -m core.train {run_dir / runs.CONFIG_FILE}`\n")


def _check_lines(check: dict | None) -> str:
    if not check:
        return ""
    from core.evaluate.preference_check import check_text

    return "## Before and after (held out, automatic)\n\n" + "".join(f"- {line}\n" for line in check_text(check)) + "\n"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"

