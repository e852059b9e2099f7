"""What the Export tab's buttons do: one `_wire_*` per section, each holding its named handlers next to
the events that call them (so "what happens when I click Export GGUF" is `_wire_gguf`).

Every long step goes through `submit` (a heavy `core.export.jobs:<step>` job) and is followed by the
job section's poll timer (`_wire_job`); Hub pushes run in their handler because the token must never be
written to disk, as a job's parameters are.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from core.export import choices
from core.export.logview import readable
from core.inference.choices import made_signature
from core.train.runs import run_folders
from tabs import export_downloads
from tabs.common import AppContext, error_text, gated
from tabs.messages import job_line, locale_of, say, translated, translated_markdown

if TYPE_CHECKING:
    from tabs.export import ExportWidgets


def wire(ctx: AppContext, ui: ExportWidgets) -> None:
    _wire_page_load(ctx, ui)
    _wire_runs(ctx, ui)
    _wire_package(ctx, ui)
    _wire_gguf(ctx, ui)
    _wire_fuse(ctx, ui)
    _wire_space(ctx, ui)
    _wire_backup(ctx, ui)
    _wire_job(ctx, ui)
    _wire_hub(ctx, ui)


def finished_runs(ctx: AppContext) -> list[str]:
    """Runs with saved adapter weights, newest first: the ones there is something to export from."""
    return [folder.name for folder in run_folders(ctx.workspace, finished=True)]


def _run_name(ctx: AppContext, run: str | None) -> str:
    """A run name from the page, refused unless it names a folder inside the workspace's runs/."""
    return ctx.workspace.named(ctx.workspace.runs, run, "run").name


def submit(ctx: AppContext, step: str, run: str, title: str, **params):
    """Start `core.export.jobs:<step>`; returns (job folder, status, timer) for `JobWidgets.outputs`."""
    try:
        ctx.require_unlocked("Export")
        for name in [run] if step not in ("fuse", "restore") else params.get("runs", []):
            _run_name(ctx, name)
        folder = choices.job_folder(ctx.workspace, run)
        params = {"workspace": str(ctx.workspace.root), "run": run, **params}
        ctx.jobs.submit(folder, f"core.export.jobs:{step}", params, kind="export", title=title, heavy=True)
    except Exception as error:
        return "", error_text(error), gr.Timer(active=False)
    return str(folder), f"⏳ {title}…", gr.Timer(active=True)


def quant_updates(ctx: AppContext, run: str, locale: str = "en"):
    """The quantisations with the recommendation pre-selected: by model size, then gated by the check;
    labels and reason in `locale`."""
    labels, recommended, reason = choices.quant_options(ctx.workspace, run)
    if locale != "en":
        mark = f" · {say('quant.recommended', 'en')}"
        labels = [(label.replace(mark, f" · {say('quant.recommended', locale)}"), quant) for label, quant in labels]
        reason = translated(reason, locale)
    return gr.update(choices=labels, value=recommended), f"ℹ️ {reason}" if reason else ""


def _run_lists(ctx: AppContext, selected: str | None = None):
    """The run picker (keeping its selection while it lists, else the newest run) and the fusion picker."""
    runs = finished_runs(ctx)
    value = selected if selected in runs else (runs[0] if runs else None)
    return gr.update(choices=runs, value=value), gr.update(choices=runs)


def _wire_page_load(ctx: AppContext, ui: ExportWidgets) -> None:
    """A page (re)load: the run lists, what this machine can do, and the running export, if any, followed."""
    def on_page_load(request: gr.Request = None):
        gates, locale = ctx.capabilities(), locale_of(request)
        push_update, hub_reason = gated(gates.hub, locale)
        quant_update, quant_reason_note = gated(gates.gguf_quantize, locale)
        running = next((job for job in ctx.jobs.list(kind="export") if not job.state.finished), None)
        runs_update, fuse_update = _run_lists(ctx)
        attached = (str(running.folder), f"⏳ {running.title}", gr.Timer(active=True)) if running else \
            ("", "", gr.Timer(active=False))
        return (runs_update, fuse_update, push_update, gr.update(interactive=gates.hub.ok), hub_reason,
                quant_update, quant_reason_note, *attached)

    ctx.demo.load(on_page_load, outputs=[ui.run_picker, ui.fuse.runs, ui.hub.button, ui.space.push_button,
                                         ui.hub.note, ui.gguf.gguf_button, ui.gguf.quant_note, *ui.job.outputs])


def _wire_runs(ctx: AppContext, ui: ExportWidgets) -> None:
    """The run picker: listing runs, following a job already running, filling each section for the run."""
    def run_lists(selected=None):
        return _run_lists(ctx, selected)

    def on_run_change(run, request: gr.Request = None):
        if not run:
            return gr.update(choices=[], value=[]), "", gr.update(choices=[]), "", ""
        files = choices.gguf_files(ctx.workspace, run)
        return (*quant_updates(ctx, run, locale_of(request)),
                gr.update(choices=files, value=files[-1] if files else None),
                translated_markdown(choices.roundtrip_markdown(ctx.workspace, run), locale_of(request)),
                str(ctx.workspace.exports / run / "backup"))

    def on_run_attach(run):
        """Follow a job already running for this run (started by the guided first run, or another tab)."""
        folder = choices.job_folder(ctx.workspace, run) if run else None
        if folder is None or not (folder / "status.json").exists():
            return gr.update(), gr.update(), gr.update()
        job = ctx.jobs.snapshot(folder)
        if job.state.finished:
            return gr.update(), gr.update(), gr.update()
        return str(folder), f"⏳ {job.title}", gr.Timer(active=True)

    def on_follow_tick(seen: str, selected: str | None):
        """Between tab visits, a run that finished elsewhere joins the pickers without a click."""
        now = made_signature(ctx.workspace)
        return (seen, gr.update(), gr.update()) if now == seen else (now, *run_lists(selected))

    ui.refresh_button.click(run_lists, [ui.run_picker], [ui.run_picker, ui.fuse.runs])
    ui.tab.select(run_lists, [ui.run_picker], [ui.run_picker, ui.fuse.runs])  # runs finished since page load
    ui.run_picker.change(on_run_attach, [ui.run_picker], ui.job.outputs)
    ui.run_picker.change(on_run_change, [ui.run_picker], [ui.gguf.quant_boxes, ui.gguf.quant_reason, ui.space.gguf,
                                                          ui.gguf.roundtrip_report, ui.backup.out])
    ui.run_picker.change(lambda run: export_downloads.refresh(ctx, run), [ui.run_picker],
                         [ui.downloads.picker, ui.downloads.button])
    ui.follow_timer.tick(on_follow_tick, [ui.made, ui.run_picker], [ui.made, ui.run_picker, ui.fuse.runs],
                         show_progress="hidden")


def _wire_package(ctx: AppContext, ui: ExportWidgets) -> None:
    def on_package_clicked(run):
        return submit(ctx, "adapter", run, f"Adapter package · {run}")

    ui.package_button.click(on_package_clicked, [ui.run_picker], ui.job.outputs)


def _wire_gguf(ctx: AppContext, ui: ExportWidgets) -> None:
    """Merge only, Export GGUF (with the round-trip check after it) and the round-trip check alone."""
    def on_merge_clicked(run):
        return submit(ctx, "merge", run, f"Merge · {run}")

    def on_gguf_clicked(run, quants):
        return submit(ctx, "gguf", run, f"GGUF {', '.join(quants or [])} · {run}", quants=list(quants or []),
                      check=True)

    def on_roundtrip_clicked(run):
        return submit(ctx, "roundtrip", run, f"Round-trip check · {run}")

    ui.gguf.merge_button.click(on_merge_clicked, [ui.run_picker], ui.job.outputs)
    ui.gguf.gguf_button.click(on_gguf_clicked, [ui.run_picker, ui.gguf.quant_boxes], ui.job.outputs)
    ui.gguf.roundtrip_button.click(on_roundtrip_clicked, [ui.run_picker], ui.job.outputs)


def _wire_fuse(ctx: AppContext, ui: ExportWidgets) -> None:
    def on_fuse_clicked(runs, weights, method, density, name):
        try:
            parsed = [float(w) for w in weights.replace(" ", "").split(",") if w]
        except ValueError:
            return "", error_text(ValueError(f"Weights '{weights}' must be numbers separated by commas.")), \
                gr.Timer(active=False)
        return submit(ctx, "fuse", "fusion", f"Fuse {', '.join(runs or [])}", runs=list(runs or []),
                      weights=parsed, method=method, density=density, name=name.strip())

    fuse = ui.fuse
    fuse.button.click(on_fuse_clicked, [fuse.runs, fuse.weights, fuse.method, fuse.density, fuse.name], ui.job.outputs)


def _wire_space(ctx: AppContext, ui: ExportWidgets) -> None:
    def on_space_clicked(run, target, gguf, bundle, model_repo):
        return submit(ctx, "space", run, f"Space ({target}) · {run}", target=target, gguf=gguf,
                      bundle_model=bool(bundle), model_repo=model_repo.strip())

    space = ui.space
    space.button.click(on_space_clicked, [ui.run_picker, space.target, space.gguf, space.bundle, space.model_repo],
                       ui.job.outputs)


def _wire_backup(ctx: AppContext, ui: ExportWidgets) -> None:
    def on_backup_clicked(run, out, gguf):
        return submit(ctx, "backup", run, f"Backup · {run}", out=out.strip(), gguf=gguf)

    def on_restore_clicked(archive):
        return submit(ctx, "restore", "restore", "Restore backup", archive=archive.strip())

    ui.backup.button.click(on_backup_clicked, [ui.run_picker, ui.backup.out, ui.space.gguf], ui.job.outputs)
    ui.backup.restore_button.click(on_restore_clicked, [ui.backup.restore_path], ui.job.outputs)


def _wire_job(ctx: AppContext, ui: ExportWidgets) -> None:
    """Following the job: status, log and, once it ends, every list that may have gained a file; Stop."""
    def on_poll_tick(folder, run, request: gr.Request = None):
        locale = locale_of(request)
        job = ctx.jobs.snapshot(Path(folder)) if folder else None
        if job is None:
            return "", "", gr.Timer(active=False), gr.update(), gr.update()
        text = job_line(job, locale, translated(job.title, locale))
        if job.error:
            text += f"\n\n❌ {job.error}"
        elif job.state.finished and job.result:
            text += "\n\n" + "  \n".join(f"{k}: `{v}`" for k, v in job.result.items()
                                           if isinstance(v, (str, int)) and k != "verdict")
            text += f"\n\n{translated_markdown(job.result['verdict'], locale)}" if job.result.get("verdict") else ""
        report = translated_markdown(choices.roundtrip_markdown(ctx.workspace, run), locale) if run else ""
        finished = bool(run) and job.state.finished
        files = choices.gguf_files(ctx.workspace, run) if finished else None
        raw = job.log_tail(200)
        unchanged = (gr.update(), gr.update())
        return (text, readable(raw), raw, gr.Timer(active=not job.state.finished), report,
                gr.update(choices=files) if files is not None else gr.update(),
                *(export_downloads.refresh(ctx, run) if finished else unchanged),
                *(quant_updates(ctx, run, locale) if finished else unchanged))

    def on_stop_clicked(folder):
        # Export steps are single calls (converter, quantiser, save) with no place to pause; every file
        # is written under a temporary name first, so a hard stop leaves earlier exports intact.
        if folder:
            ctx.jobs.kill(Path(folder))
        return "Stopped; nothing half-written replaced an earlier export." if folder else ""

    job = ui.job
    job.timer.tick(on_poll_tick, [job.folder, ui.run_picker],
                   [job.status, job.log_box, job.raw_log, job.timer, ui.gguf.roundtrip_report, ui.space.gguf,
                    ui.downloads.picker, ui.downloads.button, ui.gguf.quant_boxes, ui.gguf.quant_reason])
    job.stop_button.click(on_stop_clicked, [job.folder], [job.status])


def _wire_hub(ctx: AppContext, ui: ExportWidgets) -> None:
    def on_push_clicked(run, what, token, repo, private, target="cpu"):
        from core.export.publish import push_run

        try:
            ctx.require_unlocked("Hub push")
            url = push_run(ctx.workspace, _run_name(ctx, run), what, repo, token, bool(private), target,
                           log=lambda line: None)
        except Exception as error:  # hub errors are scrubbed of the token before they get here
            return error_text(error)
        return f"✅ Pushed: [{url}]({url})"

    def on_space_push_clicked(run, token, repo, private, target):
        return on_push_clicked(run, "space", token, repo, private, target)

    hub = ui.hub
    hub.button.click(on_push_clicked, [ui.run_picker, hub.what, hub.token, hub.repo, hub.private], [ui.job.status])
    ui.space.push_button.click(on_space_push_clicked, [ui.run_picker, hub.token, hub.repo, hub.private,
                                                       ui.space.target], [ui.job.status])
