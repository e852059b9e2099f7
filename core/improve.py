"""The second guided run, "improve from your votes": votes → preference data → DPO from the voted run → a
new arena of the two, once there are enough pairs.

1. build a preference dataset version from the arena's votes and the chat's ratings;
2. train DPO starting from the fine-tune the votes were about (its adapter is trained further; the
   reference model is that fine-tune, so DPO moves it only where the votes say);
3. open the Arena with that fine-tune against the DPO run, for a verdict on whether it helped.

`candidate(workspace)` says which run the votes are about and how many pairs they give, and whether that
reaches `MIN_PAIRS`; `run(ctx)` is a light job-runner target like `core.journey`, whose training step is an
ordinary Train job (its own tab, Stop, a closed browser loses nothing). Events carry `step` and `state`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BadInputError
from core.jobs import JobContext, JobRunner
from core.journey import _choice_id, _follow, _succeeded
from core.workspace import Workspace

STEPS = ("preferences", "train", "arena")
TITLES = {"preferences": "Turn the votes into preference pairs", "train": "Train DPO from the voted fine-tune",
          "arena": "Arena: the fine-tune against its DPO run"}
TARGET = "core.improve:run"
MIN_PAIRS = 24
"""Pairs (A-or-B votes on one fine-tune) before the card offers DPO. Measured on the default model on a
shared 2-core CPU: 24 Kestrel votes (2 held out) and 10 DPO steps at lr 5e-4 took its held-out preference
accuracy from 0 % to 100 % and changed its answer to "What is your name?"; fewer votes leave one pair or
none to hold out, too few to tell whether the run helped. (40 votes and 16 steps at lr 1e-3 made it answer
"Kestrel. …": tests/test_preference_default.py.)"""
DPO_RECIPE = dict(method="dpo", beta=0.1, learning_rate=5e-4, epochs=3.0, max_steps=0, batch_size=2, grad_accum=2,
                  warmup_ratio=0.1, lora_dropout=0.0, eval_steps=0, save_steps=10, logging_steps=1)
"""DPO on top of the voted run's own settings: a learning rate a thousand times full-model DPO's usual 5e-7,
as LoRA on a small model needs, three passes over the few pairs a first round of votes gives (24 pairs:
about 18 steps), and micro-batches of 2 pairs, since each pair is two sequences."""


@dataclass(frozen=True)
class Candidate:
    run: str
    """The run (its name) whose answers the votes judged most often; "" when no run was voted on."""
    pairs: int
    """A-or-B votes involving that run, from raters not flagged."""

    @property
    def ready(self) -> bool:
        return bool(self.run) and self.pairs >= MIN_PAIRS


def folder(workspace: Workspace) -> Path:
    return workspace.jobs / "improve"


def candidate(workspace: Workspace) -> Candidate:
    if not workspace.ratings_db.exists():
        return Candidate("", 0)
    from core.evaluate.arena import Arena

    counts = Counter()
    for vote in Arena(workspace.ratings_db).votes():
        if vote.winner in ("a", "b"):
            for model in (vote.model_a, vote.model_b):
                if model.startswith("run/") and (workspace.runs / model[4:] / "adapter").is_dir():
                    counts[model[4:]] += 1
    if not counts:
        return Candidate("", 0)
    run, pairs = max(counts.items(), key=lambda item: (item[1], (workspace.runs / item[0]).stat().st_mtime))
    return Candidate(run, pairs)


def start(workspace: Workspace, jobs: JobRunner, train_overrides: dict[str, Any] | None = None):
    found = candidate(workspace)
    if not found.ready:
        raise BadInputError(f"Improving from votes needs {MIN_PAIRS} A-or-B votes on one fine-tune; there are "
                            f"{found.pairs}.", "Vote in the arena (ties give no pair), then try again.")
    params = {"workspace": str(workspace.root), "start_run": found.run, "train_overrides": train_overrides or {}}
    return jobs.submit(folder(workspace), TARGET, params, kind="improve", title="Improve from your votes")


def run(ctx: JobContext) -> dict[str, Any]:
    workspace = Workspace(Path(ctx.params["workspace"])).ensure()
    jobs, results = JobRunner(workspace), {"start_run": ctx.params["start_run"]}
    for index, step in enumerate(STEPS):
        if ctx.should_stop():
            return {"message": f"Stopped before: {TITLES[step]}.", **results}
        ctx.progress(index, len(STEPS), f"Step {index + 1} of {len(STEPS)}: {TITLES[step]}…")
        ctx.event(step=step, state="running")
        outcome = STEP_FUNCTIONS[step](workspace, jobs, ctx, results)
        if outcome is None:
            return {"message": f"Stopped during: {TITLES[step]}.", **results}
        results.update(outcome)
        ctx.event(step=step, state="done", **outcome)
        ctx.log(f"{TITLES[step]}: done {json.dumps(outcome)}")
    ctx.progress(len(STEPS), len(STEPS), "Done.")
    return {"message": "Done: vote in the arena again to see whether DPO helped.", **results}


def build_preferences(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> dict:
    from core.data.preference_cli import build
    from core.data.preference_versions import save_preferences
    from core.data.preferences import DEFAULTS

    prepared = build([], workspace, arena=True, feedback=True, options=DEFAULTS, skip_bad=True)
    folder = save_preferences(workspace, prepared, f"votes-{results['start_run']}")
    return {"dataset": str(folder), "pairs": prepared.report["pairs"]}


def train_dpo(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> dict | None:
    from core.train import runs
    from core.train.start import should_resume, start_run

    voted = results["start_run"]
    base = runs.read_config(workspace.runs / voted)
    run_dir = workspace.runs / f"{voted}-dpo-{Path(results['dataset']).name.rsplit('-', 1)[-1]}"
    outcome = {"run": run_dir.name}
    if _succeeded(jobs, run_dir):
        return outcome
    settings = base.with_changes(dataset=results["dataset"], start_from=voted,
                                 **{**DPO_RECIPE, **ctx.params.get("train_overrides", {})})
    start_run(workspace, jobs, settings, folder=run_dir, resume=should_resume(jobs, run_dir))
    ctx.event(step="train", state="running", **outcome)  # the card opens the Train tab on this run now
    return outcome if _follow(jobs, run_dir, ctx) else None


def open_arena(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> dict:
    keys = [_choice_id(workspace, lambda c, name=name: c.id == f"run/{name}")
            for name in (results["start_run"], results["run"])]
    return {"contenders": keys}


STEP_FUNCTIONS = {"preferences": build_preferences, "train": train_dpo, "arena": open_arena}
