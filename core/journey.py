"""The guided first run: the whole journey on the default model, one step after another.

1. prepare the shipped sample data (assets/samples, which teach the identity "Kestrel"), while a job of its
   own materialises the default model for step 2;
2. fine-tune the default model on this machine with the CPU preset; the pace of its own first steps gives
   the ETA (the `train` step's second "running" event: `eta_s`, `tokens_per_s`) that the panel states and
   the run report sets against the real time;
3. export Q8_0 and F16 GGUFs, check both round-trip, and keep the one the check recommends (Q8_0 unless
   its greedy answers leave the merged model's early; then F16);
4. open Chat on that GGUF;
5. open the Arena with the base model against the fine-tune.

`run(ctx)` is a light job-runner target: steps 2 and 3 are submitted as ordinary Train and Export jobs, so
they show in their own tabs, survive a closed browser and honour Stop like any other job. A step whose
result already exists is skipped, so pressing the button again resumes where the journey stopped.
Progress events carry `step` (one of `STEPS`) and `state` ("running", "done", "skipped"); the UI follows
them from tab to tab. The job's result holds the paths later steps and the UI need.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core.errors import ChatsmithError
from core.jobs import JobContext, JobRunner, State, read_events
from core.workspace import Workspace

STEPS = ("data", "train", "export", "chat", "arena")
TITLES = {"data": "Prepare the shipped sample data", "train": "Fine-tune the default model",
          "export": "Export Q8_0 and F16 GGUFs and check them", "chat": "Chat with the GGUF",
          "arena": "Arena: base against fine-tuned"}
SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
DATASET_NAME = "kestrel-samples"
RUN_NAME = "journey-kestrel"
QUANT = "Q8_0"  # K-quants fall back on most tensors of a 576-wide model and answer nonsense (measured: README, Export)
FALLBACK = "F16"  # what Chat gets when the round-trip check sees the Q8_0 leave the merged model's answers early
TARGET = "core.journey:run"


def folder(workspace: Workspace) -> Path:
    return workspace.jobs / "journey"


def completed(workspace: Workspace, jobs: JobRunner) -> bool:
    """True once a journey has run to its end in this workspace (the panel then stays folded)."""
    return _succeeded(jobs, folder(workspace))


def start(workspace: Workspace, jobs: JobRunner, train_overrides: dict[str, Any] | None = None):
    """Submit the journey as a job; its sub-jobs take the accelerator one at a time."""
    params = {"workspace": str(workspace.root), "train_overrides": train_overrides or {}}
    return jobs.submit(folder(workspace), TARGET, params, kind="journey", title="Guided first run")


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in {".json", ".jsonl", ".csv"})


def run(ctx: JobContext) -> dict[str, Any]:
    workspace = Workspace(Path(ctx.params["workspace"])).ensure()
    jobs, results = JobRunner(workspace), {}
    _prepare_model_meanwhile(workspace, jobs, ctx.params.get("train_overrides", {}))
    for index, step in enumerate(STEPS):
        if ctx.should_stop():
            return {"message": f"Stopped before: {TITLES[step]}.", "stopped_before": step, **results}
        ctx.progress(index, len(STEPS), f"Step {index + 1} of {len(STEPS)}: {TITLES[step]}…")
        ctx.event(step=step, state="running")
        outcome, done_already = STEP_FUNCTIONS[step](workspace, jobs, ctx, results)
        if outcome is None:  # the sub-job was stopped
            return {"message": f"Stopped during: {TITLES[step]}.", "stopped_during": step, **results}
        results.update(outcome)
        ctx.event(step=step, state="skipped" if done_already else "done", **outcome)
        ctx.log(f"{TITLES[step]}: {'already done' if done_already else 'done'} {json.dumps(outcome)}")
    ctx.progress(len(STEPS), len(STEPS), "Journey complete.")
    return {"message": "Journey complete: chat with the fine-tune and rate it against the base.", **results}


def prepare_data(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> tuple[dict, bool]:
    from core.data import PrepareOptions, prepare, save_version

    existing = _saved_dataset(workspace)
    prepared = prepare(sample_files(), PrepareOptions())
    version = save_version(workspace, prepared, DATASET_NAME)
    return {"dataset": str(version)}, existing == version


def fine_tune(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> tuple[dict | None, bool]:
    from core.train.settings import CPU_PRESET, preset_settings
    from core.train.start import should_resume, start_run

    run_dir = workspace.runs / RUN_NAME
    outcome = {"run": RUN_NAME, "adapter": str(run_dir / "adapter")}
    if _succeeded(jobs, run_dir) and (run_dir / "adapter" / "adapter_config.json").is_file():
        return outcome, True
    settings = preset_settings(CPU_PRESET, dataset=results["dataset"], **ctx.params.get("train_overrides", {}))
    # No price per kWh is asked for here: the run report says so rather than showing a cost of 0.
    start_run(workspace, jobs, settings, folder=run_dir, resume=should_resume(jobs, run_dir))
    state_pace = _pace_reporter(run_dir, settings.max_steps, ctx)
    succeeded = _follow(jobs, run_dir, ctx, on_poll=state_pace)
    state_pace()  # a run shorter than one poll
    return (outcome if succeeded else None), False


def _prepare_model_meanwhile(workspace: Workspace, jobs: JobRunner, train_overrides: dict[str, Any]) -> None:
    """Materialise the default model in a process of its own while the data step runs.

    The fine-tune would otherwise begin by dequantising the packaged GGUF (about 20 s of one core) only once
    the data step (10-15 s of one core) had ended; on two cores both now run at once. The fine-tune takes the
    same file lock, so it waits for this job or finds the folder ready; if this job fails, the fine-tune meets
    the same fault and reports it.
    """
    from core.models import DEFAULT_ALIASES, default_model_dir
    from core.train.settings import CPU_PRESET, PRESETS

    if {**PRESETS[CPU_PRESET], **train_overrides}["model"] not in DEFAULT_ALIASES:
        return
    if (default_model_dir(workspace) / "config.json").is_file():
        return
    folder = workspace.jobs / "default-model"
    if (folder / "status.json").is_file() and not jobs.snapshot(folder).state.finished:
        return  # still at it from a journey pressed a moment ago
    jobs.submit(folder, "core.models:prepare_default_model", {"workspace": str(workspace.root)}, kind="model",
                title="Prepare the default model")


def _pace_reporter(run_dir: Path, total_steps: int, ctx: JobContext):
    """A poll hook that states the fine-tune's time once, from the pace of its first steps.

    The fine-tune is its own speed probe: a separate probe job loaded the model a second time and trained
    steps that were then thrown away (63-80 s of a 6.5-minute guided run on a 2-core CPU, 2026-12-03).
    """
    from core.train.runs import early_pace

    stated = False

    def state_pace() -> None:
        nonlocal stated
        if stated or (pace := early_pace(run_dir, total_steps)) is None:
            return
        stated = True
        ctx.event(step="train", state="running", eta_s=pace["eta_s"], tokens_per_s=pace["tokens_per_s"])
        ctx.log(f"Pace of steps {pace['first_step']}–{pace['after_step']}: {pace['tokens_per_s']:.0f} tokens/s, "
                f"fine-tuning ETA {pace['eta_s']:.0f} s")

    return state_pace


def export_gguf(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> tuple[dict | None, bool]:
    from core.export.choices import job_folder

    gguf_dir = workspace.exports / RUN_NAME / "gguf"
    roundtrip = workspace.exports / RUN_NAME / "roundtrip.json"
    existing = _checked_file(gguf_dir, roundtrip)
    if existing:
        return {"gguf": str(existing), "roundtrip": str(roundtrip)}, True
    # One job, as the Export tab's GGUF button runs it: export, then the round-trip check in the same process.
    job_dir = job_folder(workspace, RUN_NAME)
    params = {"workspace": str(workspace.root), "run": RUN_NAME, "quants": [QUANT, FALLBACK], "check": True}
    jobs.submit(job_dir, "core.export.jobs:gguf", params, kind="export",
                title=f"GGUF {QUANT}, {FALLBACK} · {RUN_NAME}", heavy=True)
    if not _follow(jobs, job_dir, ctx):
        return None, False
    return {"gguf": str(_checked_file(gguf_dir, roundtrip)), "roundtrip": str(roundtrip)}, False


def open_chat(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> tuple[dict, bool]:
    """The Chat tab's id of the exported GGUF."""
    gguf = Path(results["gguf"]).resolve()
    return {"chat_model": _choice_id(workspace, lambda c: c.kind == "gguf" and Path(c.gguf).resolve() == gguf)}, False


def open_arena(workspace: Workspace, jobs: JobRunner, ctx: JobContext, results: dict) -> tuple[dict, bool]:
    """Base against fine-tune, both through transformers so that only the training differs."""
    adapter = Path(results["adapter"]).resolve()
    base = _choice_id(workspace, lambda c: c.kind == "base" and c.model == "default")
    tuned = _choice_id(workspace, lambda c: c.kind == "adapter" and Path(c.adapter).resolve() == adapter)
    return {"contenders": [base, tuned]}, False


STEP_FUNCTIONS = {"data": prepare_data, "train": fine_tune, "export": export_gguf, "chat": open_chat,
                  "arena": open_arena}


def _follow(jobs: JobRunner, job_dir: Path, ctx: JobContext, on_poll=None) -> bool:
    """Wait for a sub-job, passing a stop request on and calling `on_poll` each second; True if it succeeded."""
    while True:
        job = jobs.snapshot(job_dir)
        if job.state.finished:
            break
        if ctx.should_stop():
            jobs.request_stop(job_dir)
        if on_poll:
            on_poll()
        time.sleep(1.0)
    if job.state is State.SUCCEEDED:
        return True
    if job.state is State.STOPPED or ctx.should_stop():
        return False
    raise ChatsmithError(f"'{job.title}' {job.state.value}: {job.error or job.message}",
                         "Open its tab for the log; press the journey button again to retry from this step.")


def _choice_id(workspace: Workspace, matches) -> str:
    from core.inference import list_choices

    for choice in list_choices(workspace):
        if matches(choice):
            return choice.id
    raise ChatsmithError("The journey's model is missing from the model list.", "Press the button again.")


def _succeeded(jobs: JobRunner, folder: Path) -> bool:
    return (folder / "status.json").is_file() and jobs.snapshot(folder).state is State.SUCCEEDED


def _saved_dataset(workspace: Workspace) -> Path | None:
    for path in workspace.datasets.glob(f"{DATASET_NAME}-*/train.jsonl"):
        return path.parent
    return None


def _checked_file(gguf_dir: Path, roundtrip: Path) -> Path | None:
    """The GGUF the round-trip check recommends, once both files and the check exist."""
    from core.export.verdicts import gate

    try:
        report = json.loads(roundtrip.read_text(encoding="utf-8"))
        files = json.loads((gguf_dir / "manifest.json").read_text(encoding="utf-8"))["files"]
        path = gguf_dir / files[gate(QUANT, report)[0]]["file"]
    except (OSError, ValueError, KeyError):
        return None
    return path if path.is_file() else None


# ---- where the journey is, for the panel --------------------------------------------------------

SHARE = {"data": 0.05, "train": 0.75, "export": 0.15, "chat": 0.025, "arena": 0.025}
"""Each step's share of the whole journey's time on a CPU, roughly: the fine-tune dominates."""
TRUSTED_STEP = 3  # before this many training steps the time elapsed is mostly loading and warm-up


def estimate(job) -> dict:
    """The fine-tune's projected time (`eta_s`, `tokens_per_s`) from the journey's events, or {} until its
    first steps are done."""
    found = [event for event in job.events() if event["step"] == "train" and "eta_s" in event]
    return found[-1] if found else {}


def where(workspace: Workspace, jobs: JobRunner, job) -> tuple[float, str, float | None]:
    """How far the journey is (0..1), what it is doing in words, and the seconds its current step has left
    (None when unknown)."""
    events = job.events()
    if job.state is State.SUCCEEDED:
        return 1.0, "Journey complete.", 0.0
    if not events:
        return 0.0, job.message or "Starting…", None
    states = {event["step"]: event["state"] for event in events}
    done = sum(SHARE[step] for step, state in states.items() if state in ("done", "skipped"))
    current = events[-1]["step"]
    share, text, left = _within(workspace, jobs, job, current)
    return min(1.0, done + SHARE[current] * share), text, left


def _within(workspace: Workspace, jobs: JobRunner, job, step: str) -> tuple[float, str, float | None]:
    if step == "export":
        from core.export.choices import job_folder

        sub = jobs.snapshot(job_folder(workspace, RUN_NAME))
        return sub.fraction, f"{TITLES['export']}: {sub.message or '…'}", None
    if step != "train":
        return 0.0, f"{TITLES[step]}…", None
    from core.train.runs import time_left

    eta = estimate(job).get("eta_s")
    run_dir = workspace.runs / RUN_NAME
    sub = jobs.snapshot(run_dir) if (run_dir / "status.json").is_file() else None
    if sub is None or sub.state.finished or not sub.step or not sub.total:
        if eta:
            return 0.0, f"Fine-tuning: about {minutes(eta)} on this machine (the pace of its first steps)", eta
        return 0.0, "Fine-tuning: loading the model…", None
    left = time_left(read_events(run_dir), sub.step, sub.total, sub.elapsed_s if sub.step >= TRUSTED_STEP else None)
    if left is None:
        return sub.fraction, f"Fine-tuning: step {sub.step} of {sub.total} · measuring this machine's speed…", None
    return sub.fraction, f"Fine-tuning: step {sub.step} of {sub.total} · about {minutes(left)} left", left


def minutes(seconds: float) -> str:
    count = max(1, round(seconds / 60))
    return f"{count} minute{'s' if count > 1 else ''}"
