"""The Evaluate tab's automatic metrics: a background job per model and data, a results table and a
per-sample view. Models are listed and shown by the names people gave them; the values stay their keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from core.documents.grounding import with_documents
from core.evaluate import names, session
from core.evaluate.contenders import describe_choice, list_contenders
from tabs import documents as documents_ui
from tabs.common import AppContext, error_text, refreshed, t
from tabs.messages import locale_of, localised

RESULT_HEADERS = ["job", "model", "data", "n", "loss", "perplexity", "ROUGE-L", "BLEU", "length", "empty", "looping"]
SAMPLE_HEADERS = ["id", "prompt", "reference", "answer", "ROUGE-L", "BLEU", "length", "empty", "looping"]


@dataclass(frozen=True)
class MetricsWidgets:
    model: gr.Dropdown
    data: gr.Dropdown
    limit: gr.Number
    tokens: gr.Slider
    loss: gr.Checkbox
    documents: gr.Dropdown
    start: gr.Button
    stop: gr.Button
    status: gr.Markdown
    table: gr.Dataframe
    job: gr.Dropdown
    samples: gr.Dataframe
    timer: gr.Timer
    folder: gr.State
    """The running job's folder, for this page."""


def build(ctx: AppContext, refresh_button: gr.Button, tab: gr.Tab) -> None:
    """Automatic metrics as background jobs, a results table and a per-sample view."""
    with gr.Accordion(t("evaluate.metrics"), open=False):
        with gr.Row():
            model = gr.Dropdown(label=t("evaluate.metrics_model"), elem_id="metrics-model")
            data = gr.Dropdown(label=t("evaluate.metrics_data"), elem_id="metrics-data")
            limit = gr.Number(value=20, precision=0, minimum=1, label=t("evaluate.metrics_limit"))
            tokens = gr.Slider(16, 512, value=128, step=16, label=t("evaluate.max_tokens"), elem_id="metrics-max-tokens")
            loss = gr.Checkbox(value=True, label=t("evaluate.metrics_loss"))
            documents = documents_ui.picker(ctx, "metrics-documents")
        with gr.Row():
            start = gr.Button(t("evaluate.metrics_start"), variant="primary", elem_id="metrics-start")
            stop = gr.Button(t("evaluate.metrics_stop"), elem_id="metrics-stop")
        status = gr.Markdown(elem_id="metrics-status")
        # Set widths and wrapped cells: at natural widths one long model name pushed the last columns out of
        # sight at 1440 px (the table scrolled, but nothing showed that it could).
        table = gr.Dataframe(headers=RESULT_HEADERS, label=t("evaluate.metrics_results"), interactive=False,
                             wrap=True, column_widths=["14%", "18%", "12%", *["7%"] * 8], elem_id="metrics-table")
        job = gr.Dropdown(label=t("evaluate.metrics_job"), elem_id="metrics-job")
        samples = gr.Dataframe(headers=SAMPLE_HEADERS, interactive=False, wrap=True, elem_id="metrics-samples")
        widgets = MetricsWidgets(model, data, limit, tokens, loss, documents, start, stop, status, table, job,
                                 samples, gr.Timer(2.0, active=False), gr.State(None))
    _wire(ctx, refresh_button, tab, widgets)


def _wire(ctx: AppContext, refresh_button: gr.Button, tab: gr.Tab, w: MetricsWidgets) -> None:
    def on_refresh_clicked(model_key, source, request: gr.Request = None):
        return _pickers(ctx, model_key, source, locale_of(request))

    def on_tab_selected(model_key, source, request: gr.Request = None):
        return _pickers(ctx, model_key, source, locale_of(request))

    def on_page_load(request: gr.Request = None):
        running = [job for job in ctx.jobs.list(kind="evaluate") if not job.state.finished]
        folder = str(running[0].folder) if running else None  # re-attach to a job started before a reload
        return (*_pickers(ctx, None, None, locale_of(request)), folder, *on_metrics_tick(folder))

    def on_metrics_start_clicked(model_key, source, limit, max_new_tokens, with_loss, documents):
        try:
            folder = _submit(ctx, model_key, source, documents, {"limit": int(limit),
                             "max_new_tokens": int(max_new_tokens), "held_out_loss": bool(with_loss)})
        except Exception as error:
            return None, error_text(error), gr.Timer(active=False)
        return str(folder), "…", gr.Timer(active=True)

    def on_metrics_stop_clicked(folder):
        if folder:
            ctx.jobs.request_stop(Path(folder))
        return "Stopping…" if folder else ""

    def on_metrics_tick(folder):
        return _results(ctx, ctx.jobs.snapshot(Path(folder)) if folder else None)

    def on_metrics_job_change(job_name):
        for result in session.metrics_results(ctx.workspace):
            if result["job"] == job_name:
                return [_sample_row(sample) for sample in result["samples"]] or None
        return None

    pickers = [w.model, w.data]
    outputs = [w.status, w.table, w.job, w.timer]
    ctx.demo.load(on_page_load, outputs=[*pickers, w.folder, *outputs])
    refresh_button.click(on_refresh_clicked, pickers, pickers)
    tab.select(on_tab_selected, pickers, pickers)
    w.start.click(on_metrics_start_clicked, [*pickers, w.limit, w.tokens, w.loss, w.documents],
                  [w.folder, w.status, w.timer])
    w.stop.click(on_metrics_stop_clicked, w.folder, w.status)
    w.timer.tick(on_metrics_tick, w.folder, outputs)
    w.job.change(on_metrics_job_change, w.job, w.samples)


def _pickers(ctx: AppContext, model_key, source, locale: str = "en") -> tuple:
    """The model and data pickers: the picks while they exist, else the first model and the newest data.
    Page load, Refresh and opening the tab use this one rule, so whichever lands last agrees."""
    keys, sources = list(list_contenders(ctx.workspace)), session.prompt_sources(ctx.workspace)
    return (refreshed(localised(names.choices(ctx.workspace, keys), locale), model_key, keys[0] if keys else None),
            refreshed(sources, source, sources[-1]))


def _submit(ctx: AppContext, model_key: str, source: str, documents: str, settings: dict) -> Path:
    """Start a metrics job for a model (optionally answering from documents) on a prompt source."""
    ctx.require_unlocked("Automatic metrics")
    choice = list_contenders(ctx.workspace)[model_key]
    choice = with_documents(choice, documents) if documents else choice
    data = "shipped" if source == session.SHIPPED_SOURCE else \
        str(ctx.workspace.named(ctx.workspace.datasets, source, "dataset"))
    params = {"workspace": str(ctx.workspace.root), "choice": describe_choice(choice), "data": data,
              "settings": settings}
    folder = session.new_job_folder(ctx.workspace)
    title = f"Metrics · {names.display_names(ctx.workspace, [model_key])[model_key]} on {source}"
    ctx.jobs.submit(folder, "core.evaluate.metrics:run_job", params, kind="evaluate", heavy=True, title=title)
    return folder


def _results(ctx: AppContext, job) -> tuple:
    """Updates for [status, results table, per-sample job picker, timer] while `job` (or none) runs."""
    status = "" if job is None else (f"**{job.state.value}** · {job.step}/{job.total or '?'} · {job.message}"
                                     + (f"\n\n❌ {job.error}" if job.error else ""))
    results = session.metrics_results(ctx.workspace)
    shown = names.display_names(ctx.workspace, [result["model"] for result in results])
    finished = job is None or job.state.finished
    newest = {"value": results[0]["job"]} if finished and results else {}  # show the result just in
    return (status, [_result_row(r, shown[r["model"]]) for r in results] or None,
            gr.update(choices=[r["job"] for r in results], **newest), gr.Timer(active=not finished))


def _result_row(result: dict, model_name: str) -> list:
    s = result["summary"]
    return [result["job"], model_name, result["data"], s["samples"], _num(s.get("loss")),
            _num(s.get("perplexity")), _num(s.get("rouge_l"), 3), _num(s.get("bleu")), _num(s.get("mean_length"), 1),
            _num(s.get("empty_rate")), _num(s.get("looping_rate"))]


def _sample_row(sample: dict) -> list:
    return [sample["id"], sample["prompt"], sample.get("reference") or "", sample["answer"],
            _num(sample.get("rouge_l"), 3), _num(sample.get("bleu")), sample["length"], sample["empty"],
            sample["looping"]]


def _num(value, digits: int = 2):
    return None if value is None else round(float(value), digits)
