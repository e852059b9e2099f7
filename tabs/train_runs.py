"""The Train tab's runs: the Start / Stop / Resume row, the live view of the picked run, and their handlers.

What a click does, in one place: `on_start_click` builds `TrainSettings` from the form and submits a run
job (`core.train.start.start_run`); `on_stop_click` asks the job to stop (it saves a checkpoint first);
`on_resume_click` restarts a stopped run from its newest complete checkpoint; `on_queue_click` starts one
run per picked dataset. The live view (`run_view`) is redrawn by the tab's timer: steps, progress, curves,
the log as a person reads it (`core.train.logview`) with the raw log folded beneath, and the command that
repeats the run without the UI. Handlers take the `AppContext` first; the tab binds it.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from core.errors import BadInputError
from core.train import logview, runs
from core.train.settings import TrainSettings
from core.train.start import start_run
from tabs import train_preference
from tabs.common import AppContext, error_text, t
from tabs.messages import job_line, locale_of, say, translated, translated_parts
from tabs.train_settings import dataset_path, settings_from


def build_run_buttons(ui: SimpleNamespace) -> None:
    with gr.Row():
        ui.start_button = gr.Button(t("train.start"), variant="primary", elem_id="train-start")
        ui.stop_button = gr.Button(t("train.stop"), variant="stop", elem_id="train-stop")
        ui.resume_button = gr.Button(t("train.resume"), interactive=False, elem_id="train-resume")
    ui.action_note = gr.Markdown(elem_id="train-note")


def build_live_view(ui: SimpleNamespace) -> None:
    """The picked run: its steps and progress, loss / learning-rate / preference curves, log and command."""
    with gr.Row():
        ui.run_picker = gr.Dropdown([], label=t("train.run"), allow_custom_value=True, elem_id="train-run")
        ui.steps_box = gr.Textbox(label=t("train.steps"), interactive=False, elem_id="train-steps")
    ui.progress_text = gr.Markdown(elem_id="train-progress")
    with gr.Row():
        ui.loss_plot = gr.LinePlot(x="step", y="value", color="metric", label=t("train.loss"),
                                   elem_id="train-loss-plot")
        ui.lr_plot = gr.LinePlot(x="step", y="value", label=t("train.lr"), elem_id="train-lr-plot")
    ui.preference_plot = gr.LinePlot(x="step", y="value", color="metric", label=t("train.preference_plot"),
                                     elem_id="train-preference-plot")
    ui.log_box = gr.Textbox(label=t("train.log"), lines=8, max_lines=12, interactive=False, elem_id="train-log")
    with gr.Accordion(t("train.raw_log"), open=False):
        ui.raw_log = gr.Textbox(show_label=False, lines=8, max_lines=20, interactive=False, elem_id="train-raw-log")
    ui.headless_code = gr.Code(label=t("train.headless"), language="shell", interactive=False)
    ui.view_outputs = [ui.steps_box, ui.progress_text, ui.loss_plot, ui.lr_plot, ui.log_box, ui.headless_code,
                       ui.resume_button, ui.stop_button, ui.preference_plot, ui.raw_log]


def on_start_click(ctx: AppContext, plan_values, price, currency, request: gr.Request, *form_values):
    try:
        ctx.require_unlocked("Training")
        name = start_named(ctx, settings_from(ctx, *form_values), plan_values, price, currency)
    except Exception as error:  # shown beside the buttons; nothing started
        return error_text(error, locale_of(request)), gr.update()
    return f"⏳ {name}", gr.update(choices=run_names(ctx), value=name)


def on_stop_click(ctx: AppContext, run_name, request: gr.Request = None):
    if not run_name:
        return ""
    try:
        ctx.jobs.request_stop(run_dir(ctx, run_name))
    except Exception as error:
        return error_text(error, locale_of(request))
    return f"■ {run_name}: saving a checkpoint and the adapter, then stopping…"


def on_resume_click(ctx: AppContext, run_name, price, currency, request: gr.Request = None):
    try:
        ctx.require_unlocked("Training")
        folder = run_dir(ctx, run_name)
        check = runs.resume_check(folder, ctx.jobs)
        if not check.ok:
            return f"🚫 {check.reason}"
        start_run(ctx.workspace, ctx.jobs, runs.read_config(folder), folder=folder, resume=True,
                  price_per_kwh=price, currency=currency)
        return f"⟳ {check.reason}"
    except Exception as error:
        return error_text(error, locale_of(request))


def on_queue_click(ctx: AppContext, datasets, plan_values, price, currency, request: gr.Request, *form_values):
    try:
        ctx.require_unlocked("Training")
        base = settings_from(ctx, *form_values)
        names = [start_named(ctx, base.with_changes(dataset=dataset_path(ctx, dataset)), {}, price, currency)
                 for dataset in datasets or []]
    except Exception as error:
        return error_text(error, locale_of(request)), gr.update()
    return (f"⏳ queued {len(names)}: {', '.join(names)}",
            gr.update(choices=run_names(ctx), value=names[-1] if names else None))


def on_poll_tick(ctx: AppContext, run_name, request: gr.Request = None):
    return run_view(ctx, run_name, locale_of(request))


def start_named(ctx: AppContext, settings: TrainSettings, plan_values: dict, price, currency) -> str:
    """Starts a run and returns its name; the pre-flight ETA goes with it when made for these settings."""
    plan = (plan_values or {}).get("plan") or {}
    same = (plan_values or {}).get("settings") == settings.to_dict()
    job = start_run(ctx.workspace, ctx.jobs, settings, eta_s=plan.get("eta_s") if same else None,
                    price_per_kwh=price, currency=currency, capabilities=ctx.capabilities(), device=ctx.device())
    return job.folder.name


def run_names(ctx: AppContext) -> list[str]:
    return [run.name for run in runs.list_runs(ctx.workspace, ctx.jobs)]


def run_dir(ctx: AppContext, run_name: str | None) -> Path:
    """The run folder a name from the page means; names that lead out of the workspace are refused."""
    return ctx.workspace.named(ctx.workspace.runs, run_name, "run")


def run_view(ctx: AppContext, run_name: str | None, locale: str = "en"):
    """Everything the live view shows for one run, in `view_outputs` order."""
    import pandas as pd

    empty = pd.DataFrame({"step": [], "value": [], "metric": []})
    try:
        folder = run_dir(ctx, run_name)
    except BadInputError:  # nothing picked yet, or a typed name that is no run: an empty view
        folder = None
    if folder is None or not (folder / "job.json").is_file():
        off = gr.update(interactive=False)
        return "", "", empty, empty, "", "", off, off, empty, ""
    job = ctx.jobs.snapshot(folder)
    events = job.events()
    rows = [{"step": e["step"], "value": e[m], "metric": m} for e in events for m in ("loss", "eval_loss") if m in e]
    lr_rows = [{"step": e["step"], "value": e["learning_rate"], "metric": "lr"} for e in events if "learning_rate" in e]
    check = runs.resume_check(folder, ctx.jobs)
    steps = f"{job.step} / {job.total}" if job.total else str(job.step)
    command = f"python -m core.train {folder / runs.CONFIG_FILE}"
    if job.state.value in ("stopped", "interrupted", "failed"):
        command += f"\npython -m core.train {folder / runs.CONFIG_FILE} --resume"
    progress = progress_text(job, events, check, locale)
    if job.state.finished:
        progress += "\n\n" + train_preference.check_text(folder)
    raw = job.log_tail(200)
    log = "\n".join(translated_parts(line, locale) for line in logview.readable(raw).splitlines())
    return (steps, progress, pd.DataFrame(rows or empty), pd.DataFrame(lr_rows or empty), log,
            command, gr.update(interactive=check.ok and not ctx.locked_reason),
            gr.update(interactive=not job.state.finished),
            pd.DataFrame(train_preference.curve_rows(events) or empty), raw)


def progress_text(job, events: list[dict], check, locale: str = "en") -> str:
    speeds = [e["tokens_per_s"] for e in events[-5:] if e.get("tokens_per_s")]
    speed = sum(speeds) / len(speeds) if speeds else 0.0
    elapsed = job.elapsed_s
    remaining = runs.time_left(events, job.step, job.total, elapsed) if job.total else None
    parts = [job_line(job, locale), say("train.elapsed", locale, clock=_clock(elapsed))]
    if remaining is not None and not job.state.finished:
        parts.append(say("train.remaining", locale, clock=_clock(remaining)))
    parts.append(say("train.speed", locale, speed=f"{speed:,.0f}"))
    text = " · ".join(parts)
    if job.error:
        text += f"\n\n❌ {job.error}"
    if job.state.finished:
        text += f"\n\n{'⟳' if check.ok else 'ℹ️'} {translated(check.reason, locale)}"
    return text


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
