"""The Train tab's speed probe: a few real steps as a background job, followed by the tab's timer.

`start` submits `core.train.job:probe` and returns at once, so no Gradio worker waits the minutes a
probe can take; the tab then turns its probe timer on. Each tick calls `follow`, which reads the job:
while it runs the card says which step it is at; once it has ended the card shows the measured speed with the ETA,
energy and cost of the whole run (or the job's error), and the timer goes off.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from core.train import preflight
from core.train.settings import TrainSettings, check_offered
from tabs.common import AppContext, error_text

TARGET = "core.train.job:probe"
STEPS = 3


def start(ctx: AppContext, settings: TrainSettings, plan_values: dict, price, currency) -> tuple[str, dict]:
    """(the card marked as probing, what `follow` needs); the probe job is submitted, not waited for."""
    ctx.require_unlocked("Training")
    check_offered(settings, ctx.capabilities())  # a probe of what Start would refuse measures nothing useful
    same = (plan_values or {}).get("settings") == settings.to_dict()
    plan = preflight.Plan(**plan_values["plan"]) if same else preflight.estimate(settings, ctx.workspace, ctx.device())
    folder = ctx.workspace.jobs / f"probe-{time.strftime('%Y%m%d-%H%M%S')}"
    params = {"settings": settings.to_dict(), "steps": STEPS, "workspace": str(ctx.workspace.root)}
    ctx.jobs.submit(folder, TARGET, params, kind="probe", title="Speed probe", heavy=True)
    probe = {"folder": str(folder), "plan": dataclasses.asdict(plan), "settings": settings.to_dict(),
             "price": float(price or 0), "currency": currency or ""}
    return preflight.card(plan) + "\n\n⏳ probing…", probe


def follow(ctx: AppContext, probe: dict) -> tuple[str, dict | None]:
    """(the card, None) while the probe runs; then (the card, the plan values Start uses for the run's ETA)."""
    job = ctx.jobs.snapshot(Path(probe["folder"]))
    plan = preflight.Plan(**probe["plan"])
    if not job.state.finished:
        return preflight.card(plan) + f"\n\n⏳ probing: {_where(job)}", None
    if job.error:
        return preflight.card(plan) + "\n\n" + error_text(RuntimeError(job.error)), \
            {"plan": probe["plan"], "settings": probe["settings"]}
    settings = TrainSettings.from_dict(probe["settings"])
    priced = preflight.with_probe(plan, job.result.get("tokens_per_s", 0.0), settings.power_watts, probe["price"],
                                  probe["currency"], ctx.device().kind)
    return preflight.card(priced), {"plan": dataclasses.asdict(priced), "settings": probe["settings"]}


def _where(job) -> str:
    """Where a speed probe is: loading and preparing, then training step k of n."""
    if not job.total:
        return job.message or job.state.value
    return f"step {job.step} of {job.total}" + (f" ({job.message})" if not job.step and job.message else "")
