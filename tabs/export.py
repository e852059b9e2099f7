"""Export tab: a run becomes an adapter package, a merged model, GGUFs, a Space, a Hub repo or a backup.

Long steps go through the job runner (`core.export.jobs:<step>`, kind "export", heavy) and are polled
with a timer; a reload re-attaches to the newest running export. Hub pushes run in the handler itself,
because a job's parameters are written to disk and the token must never be.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from core.export import choices
from core.export.logview import readable
from core.train.runs import run_folders
from tabs import export_downloads
from tabs.common import AppContext, Focus, error_text, gated, t

STRINGS = {
    "en": {
        "export.tab": "📦 Export",
        "export.header": '## Export\nAdapter, merged model, GGUF for llama.cpp, Hub pushes and a chat-demo Space.',
        "export.run": "Run", "export.refresh": "↻ Refresh",
        "export.package_title": "### Adapter package", "export.package_button": "Build adapter package",
        "export.gguf_title": "### Merge and GGUF (llama.cpp, Ollama, LM Studio)",
        "export.quant": "Quantisations (estimated size; F16 is always kept)",
        "export.merge_button": "Merge only", "export.gguf_button": "Export GGUF",
        "export.roundtrip_button": "Run round-trip check",
        "export.fuse_title": "### Fuse adapters", "export.fuse_runs": "Runs to fuse (same base model)",
        "export.fuse_weights": "Weights, comma-separated (empty = equal)", "export.fuse_method": "Method",
        "export.fuse_density": "Density (TIES / DARE)", "export.fuse_name": "New run name (optional)",
        "export.fuse_button": "Fuse",
        "export.hub_title": "### Push to the Hugging Face Hub",
        "export.hub_what": "What to push", "export.hub_token": "Token (write access; used once, never saved)",
        "export.hub_repo": "Repository id (user/name)", "export.hub_private": "Private",
        "export.hub_button": "Push",
        "export.space_title": "### Chat-demo Space", "export.space_target": "Target",
        "export.space_gguf": "GGUF for the CPU Space", "export.space_bundle": "Bundle the model in the Space",
        "export.space_model_repo": "Model repository to load from (when not bundled)",
        "export.space_button": "Build Space folder", "export.space_push": "Push Space",
        "export.backup_title": "### Backup and restore", "export.backup_out": "Archive path (any folder or file)",
        "export.backup_button": "Back up run", "export.restore_path": "Archive to restore",
        "export.restore_button": "Restore (verifies every hash)",
        "export.stop": "Stop", "export.log": "Log", "export.raw_log": "Raw log (every line the job printed)",
        **export_downloads.STRINGS["en"],
    },
    "zh": {
        "export.tab": "📦 导出",
        "export.header": '## 导出\n适配器、合并模型、llama.cpp 用的 GGUF、推送到 Hub，以及聊天演示 Space。',
        "export.run": "训练运行", "export.refresh": "↻ 刷新",
        "export.package_title": "### 适配器包", "export.package_button": "生成适配器包",
        "export.gguf_title": "### 合并与 GGUF（llama.cpp、Ollama、LM Studio）",
        "export.quant": "量化类型（预估大小；始终保留 F16）",
        "export.merge_button": "仅合并", "export.gguf_button": "导出 GGUF",
        "export.roundtrip_button": "运行往返一致性检查",
        "export.fuse_title": "### 融合适配器", "export.fuse_runs": "要融合的运行（同一基础模型）",
        "export.fuse_weights": "权重，逗号分隔（留空 = 平均）", "export.fuse_method": "方法",
        "export.fuse_density": "密度（TIES / DARE）", "export.fuse_name": "新运行名称（可选）",
        "export.fuse_button": "融合",
        "export.hub_title": "### 推送到 Hugging Face Hub",
        "export.hub_what": "推送内容", "export.hub_token": "令牌（需写权限；仅本次使用，从不保存）",
        "export.hub_repo": "仓库 ID（用户/名称）", "export.hub_private": "私有",
        "export.hub_button": "推送",
        "export.space_title": "### 聊天演示 Space", "export.space_target": "目标硬件",
        "export.space_gguf": "CPU Space 使用的 GGUF", "export.space_bundle": "将模型打包进 Space",
        "export.space_model_repo": "模型仓库（不打包时从此加载）",
        "export.space_button": "生成 Space 文件夹", "export.space_push": "推送 Space",
        "export.backup_title": "### 备份与恢复", "export.backup_out": "归档路径（任意文件夹或文件）",
        "export.backup_button": "备份运行", "export.restore_path": "要恢复的归档",
        "export.restore_button": "恢复（校验全部哈希）",
        "export.stop": "停止", "export.log": "日志", "export.raw_log": "原始日志（任务输出的每一行）",
        **export_downloads.STRINGS["zh"],
    },
}
PUSHABLE = ["adapter", "merged", "gguf", "backup"]
FUSE_METHODS = ["linear", "cat", "ties", "dare"]


def build(ctx: AppContext) -> Focus:
    with gr.Tab(t("export.tab"), id="export") as tab:
        gr.Markdown(t("export.header"))
        ui = _layout()
        ui.downloads = export_downloads.build(ctx, ui.run_picker)
    ui.tab = tab
    _wire(ctx, ui)
    return Focus(ui.run_picker, lambda run: gr.update(choices=_finished_runs(ctx), value=run))


def _layout() -> SimpleNamespace:
    """Widgets, top to bottom: run and job status, then one section per kind of export."""
    ui = SimpleNamespace(job_folder=gr.State(""), poll_timer=gr.Timer(1.0, active=False))
    with gr.Row():
        ui.run_picker = gr.Dropdown([], label=t("export.run"), elem_id="export-run", scale=4)
        ui.refresh_button = gr.Button(t("export.refresh"), scale=1, elem_id="export-refresh")
    ui.status = gr.Markdown(elem_id="export-status")
    ui.stop_button = gr.Button(t("export.stop"), size="sm")
    ui.log_box = gr.Textbox(label=t("export.log"), lines=6, max_lines=12, interactive=False, elem_id="export-log")
    with gr.Accordion(t("export.raw_log"), open=False):
        ui.raw_log = gr.Textbox(show_label=False, lines=8, max_lines=20, interactive=False, elem_id="export-raw-log")
    gr.Markdown(t("export.package_title"))
    ui.package_button = gr.Button(t("export.package_button"), elem_id="export-package-button")
    _gguf_section(ui)
    _fuse_section(ui)
    _hub_section(ui)
    _space_section(ui)
    _backup_section(ui)
    return ui


def _gguf_section(ui: SimpleNamespace) -> None:
    gr.Markdown(t("export.gguf_title"))
    ui.quant_boxes = gr.CheckboxGroup([], label=t("export.quant"), elem_id="export-quant")
    ui.quant_reason = gr.Markdown(elem_id="export-quant-reason")
    ui.quant_note = gr.Markdown()
    with gr.Row():
        ui.merge_button = gr.Button(t("export.merge_button"))
        ui.gguf_button = gr.Button(t("export.gguf_button"), variant="primary", elem_id="export-gguf-button")
        ui.roundtrip_button = gr.Button(t("export.roundtrip_button"), elem_id="export-roundtrip-button")
    ui.roundtrip_report = gr.Markdown(elem_id="export-roundtrip")


def _fuse_section(ui: SimpleNamespace) -> None:
    gr.Markdown(t("export.fuse_title"))
    with gr.Row():
        ui.fuse_runs = gr.Dropdown([], multiselect=True, label=t("export.fuse_runs"), scale=3)
        ui.fuse_weights = gr.Textbox(label=t("export.fuse_weights"), scale=2)
    with gr.Row():
        ui.fuse_method = gr.Radio(FUSE_METHODS, value="linear", label=t("export.fuse_method"))
        ui.fuse_density = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label=t("export.fuse_density"))
        ui.fuse_name = gr.Textbox(label=t("export.fuse_name"))
    ui.fuse_button = gr.Button(t("export.fuse_button"))


def _hub_section(ui: SimpleNamespace) -> None:
    gr.Markdown(t("export.hub_title"))
    ui.hub_note = gr.Markdown(elem_id="export-hub-note")
    with gr.Row():
        ui.hub_what = gr.Dropdown(PUSHABLE, value="adapter", label=t("export.hub_what"))
        ui.hub_token = gr.Textbox(label=t("export.hub_token"), type="password", elem_id="export-hub-token")
        ui.hub_repo = gr.Textbox(label=t("export.hub_repo"), placeholder="user/my-assistant")
        ui.hub_private = gr.Checkbox(True, label=t("export.hub_private"))
    ui.hub_button = gr.Button(t("export.hub_button"), elem_id="export-hub-button")


def _space_section(ui: SimpleNamespace) -> None:
    gr.Markdown(t("export.space_title"))
    with gr.Row():
        ui.space_target = gr.Radio(["cpu", "zerogpu"], value="cpu", label=t("export.space_target"))
        ui.space_gguf = gr.Dropdown([], label=t("export.space_gguf"))
        ui.space_bundle = gr.Checkbox(True, label=t("export.space_bundle"))
        ui.space_model_repo = gr.Textbox(label=t("export.space_model_repo"))
    with gr.Row():
        ui.space_button = gr.Button(t("export.space_button"))
        ui.space_push_button = gr.Button(t("export.space_push"))


def _backup_section(ui: SimpleNamespace) -> None:
    gr.Markdown(t("export.backup_title"))
    with gr.Row():
        ui.backup_out = gr.Textbox(label=t("export.backup_out"), scale=3)
        ui.backup_button = gr.Button(t("export.backup_button"), scale=1)
    with gr.Row():
        ui.restore_path = gr.Textbox(label=t("export.restore_path"), scale=3)
        ui.restore_button = gr.Button(t("export.restore_button"), scale=1)


def _finished_runs(ctx: AppContext) -> list[str]:
    """Runs with saved adapter weights, newest first: the ones there is something to export from."""
    return [folder.name for folder in run_folders(ctx.workspace, finished=True)]


def _run_name(ctx: AppContext, run: str | None) -> str:
    """A run name from the page, refused unless it names a folder inside the workspace's runs/."""
    return ctx.workspace.named(ctx.workspace.runs, run, "run").name


def _wire(ctx: AppContext, ui: SimpleNamespace) -> None:
    def run_lists(selected=None):
        runs = _finished_runs(ctx)
        value = selected if selected in runs else (runs[0] if runs else None)
        return gr.update(choices=runs, value=value), gr.update(choices=runs)

    def quant_updates(run):
        """The quantisations with the recommendation pre-selected: by model size, then gated by the check."""
        labels, recommended, reason = choices.quant_options(ctx.workspace, run)
        return gr.update(choices=labels, value=recommended), f"ℹ️ {reason}" if reason else ""

    def on_run_change(run):
        if not run:
            return gr.update(choices=[], value=[]), "", gr.update(choices=[]), "", ""
        files = choices.gguf_files(ctx.workspace, run)
        return (*quant_updates(run), gr.update(choices=files, value=files[-1] if files else None),
                choices.roundtrip_markdown(ctx.workspace, run), str(ctx.workspace.exports / run / "backup"))

    def on_run_attach(run):
        """Follow a job already running for this run (started by the guided first run, or another tab)."""
        folder = choices.job_folder(ctx.workspace, run) if run else None
        if folder is None or not (folder / "status.json").exists():
            return gr.update(), gr.update(), gr.update()
        job = ctx.jobs.snapshot(folder)
        if job.state.finished:
            return gr.update(), gr.update(), gr.update()
        return str(folder), f"⏳ {job.title}", gr.Timer(active=True)

    def submit(step: str, run: str, title: str, **params):
        """Start `core.export.jobs:<step>`; returns (job folder, status, timer)."""
        try:
            ctx.require_unlocked("Export")
            for name in [run] if step not in ("fuse", "restore") else params.get("runs", []):
                _run_name(ctx, name)
            folder = choices.job_folder(ctx.workspace, run)
            ctx.jobs.submit(folder, f"core.export.jobs:{step}",
                            {"workspace": str(ctx.workspace.root), "run": run, **params},
                            kind="export", title=title, heavy=True)
        except Exception as error:
            return "", error_text(error), gr.Timer(active=False)
        return str(folder), f"⏳ {title}…", gr.Timer(active=True)

    def on_package_clicked(run):
        return submit("adapter", run, f"Adapter package · {run}")

    def on_merge_clicked(run):
        return submit("merge", run, f"Merge · {run}")

    def on_gguf_clicked(run, quants):
        return submit("gguf", run, f"GGUF {', '.join(quants or [])} · {run}", quants=list(quants or []), check=True)

    def on_roundtrip_clicked(run):
        return submit("roundtrip", run, f"Round-trip check · {run}")

    def on_fuse_clicked(runs, weights, method, density, name):
        try:
            parsed = [float(w) for w in weights.replace(" ", "").split(",") if w]
        except ValueError:
            return "", error_text(ValueError(f"Weights '{weights}' must be numbers separated by commas.")), \
                gr.Timer(active=False)
        return submit("fuse", "fusion", f"Fuse {', '.join(runs or [])}", runs=list(runs or []),
                      weights=parsed, method=method, density=density, name=name.strip())

    def on_space_clicked(run, target, gguf, bundle, model_repo):
        return submit("space", run, f"Space ({target}) · {run}", target=target, gguf=gguf,
                      bundle_model=bool(bundle), model_repo=model_repo.strip())

    def on_backup_clicked(run, out, gguf):
        return submit("backup", run, f"Backup · {run}", out=out.strip(), gguf=gguf)

    def on_restore_clicked(archive):
        return submit("restore", "restore", "Restore backup", archive=archive.strip())

    def on_poll_tick(folder, run):
        job = ctx.jobs.snapshot(Path(folder)) if folder else None
        if job is None:
            return "", "", gr.Timer(active=False), gr.update(), gr.update()
        text = f"**{job.state.value}** · {job.title} · {job.message}"
        if job.error:
            text += f"\n\n❌ {job.error}"
        elif job.state.finished and job.result:
            text += "\n\n" + "  \n".join(f"{k}: `{v}`" for k, v in job.result.items()
                                           if isinstance(v, (str, int)) and k != "verdict")
            text += f"\n\n{job.result['verdict']}" if job.result.get("verdict") else ""
        report = choices.roundtrip_markdown(ctx.workspace, run) if run else ""
        finished = bool(run) and job.state.finished
        files = choices.gguf_files(ctx.workspace, run) if finished else None
        raw = job.log_tail(200)
        unchanged = (gr.update(), gr.update())
        return (text, readable(raw), raw, gr.Timer(active=not job.state.finished), report,
                gr.update(choices=files) if files is not None else gr.update(),
                *(export_downloads.refresh(ctx, run) if finished else unchanged),
                *(quant_updates(run) if finished else unchanged))

    def on_stop_clicked(folder):
        # Export steps are single calls (converter, quantiser, save) with no place to pause; every file
        # is written under a temporary name first, so a hard stop leaves earlier exports intact.
        if folder:
            ctx.jobs.kill(Path(folder))
        return "Stopped; nothing half-written replaced an earlier export." if folder else ""

    def on_push_clicked(run, what, token, repo, private, target="cpu"):
        from core.export.publish import push_run

        try:
            ctx.require_unlocked("Hub push")
            url = push_run(ctx.workspace, _run_name(ctx, run), what, repo, token, bool(private), target, log=lambda line: None)
        except Exception as error:  # hub errors are scrubbed of the token before they get here
            return error_text(error)
        return f"✅ Pushed: [{url}]({url})"

    def on_space_push_clicked(run, token, repo, private, target):
        return on_push_clicked(run, "space", token, repo, private, target)

    def on_page_load():
        gates = ctx.capabilities()
        push_update, hub_reason = gated(gates.hub)
        quant_update, quant_reason_note = gated(gates.gguf_quantize)
        running = next((job for job in ctx.jobs.list(kind="export") if not job.state.finished), None)
        runs_update, fuse_update = run_lists()
        attached = (str(running.folder), f"⏳ {running.title}", gr.Timer(active=True)) if running else \
            ("", "", gr.Timer(active=False))
        return (runs_update, fuse_update, push_update, gr.update(interactive=gates.hub.ok), hub_reason,
                quant_update, quant_reason_note, *attached)

    job_outputs = [ui.job_folder, ui.status, ui.poll_timer]
    ctx.demo.load(on_page_load, outputs=[ui.run_picker, ui.fuse_runs, ui.hub_button, ui.space_push_button,
                                         ui.hub_note, ui.gguf_button, ui.quant_note, *job_outputs])
    ui.refresh_button.click(run_lists, [ui.run_picker], [ui.run_picker, ui.fuse_runs])
    ui.tab.select(run_lists, [ui.run_picker], [ui.run_picker, ui.fuse_runs])  # runs finished since page load
    ui.run_picker.change(on_run_attach, [ui.run_picker], job_outputs)
    ui.run_picker.change(on_run_change, [ui.run_picker],
                         [ui.quant_boxes, ui.quant_reason, ui.space_gguf, ui.roundtrip_report, ui.backup_out])
    ui.run_picker.change(lambda run: export_downloads.refresh(ctx, run), [ui.run_picker],
                         [ui.downloads.picker, ui.downloads.button])
    ui.package_button.click(on_package_clicked, [ui.run_picker], job_outputs)
    ui.merge_button.click(on_merge_clicked, [ui.run_picker], job_outputs)
    ui.gguf_button.click(on_gguf_clicked, [ui.run_picker, ui.quant_boxes], job_outputs)
    ui.roundtrip_button.click(on_roundtrip_clicked, [ui.run_picker], job_outputs)
    ui.fuse_button.click(on_fuse_clicked, [ui.fuse_runs, ui.fuse_weights, ui.fuse_method, ui.fuse_density,
                                           ui.fuse_name], job_outputs)
    ui.space_button.click(on_space_clicked, [ui.run_picker, ui.space_target, ui.space_gguf, ui.space_bundle,
                                             ui.space_model_repo], job_outputs)
    ui.backup_button.click(on_backup_clicked, [ui.run_picker, ui.backup_out, ui.space_gguf], job_outputs)
    ui.restore_button.click(on_restore_clicked, [ui.restore_path], job_outputs)
    ui.poll_timer.tick(on_poll_tick, [ui.job_folder, ui.run_picker],
                       [ui.status, ui.log_box, ui.raw_log, ui.poll_timer, ui.roundtrip_report, ui.space_gguf,
                        ui.downloads.picker, ui.downloads.button, ui.quant_boxes, ui.quant_reason])
    ui.stop_button.click(on_stop_clicked, [ui.job_folder], [ui.status])
    ui.hub_button.click(on_push_clicked, [ui.run_picker, ui.hub_what, ui.hub_token, ui.hub_repo, ui.hub_private],
                        [ui.status])
    ui.space_push_button.click(on_space_push_clicked, [ui.run_picker, ui.hub_token, ui.hub_repo, ui.hub_private,
                                                       ui.space_target], [ui.status])
