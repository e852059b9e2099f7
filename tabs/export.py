"""Export tab: a run becomes an adapter package, a merged model, GGUFs, a Space, a Hub repo or a backup.

This module lays the tab out, one builder per section (`_build_*`), each returning a frozen dataclass of
its widgets; `tabs.export_handlers` wires them to named handlers. Long steps go through the job runner
(`core.export.jobs:<step>`, kind "export", heavy) and are polled with a timer; a reload re-attaches to
the newest running export. Hub pushes run in the handler itself, because a job's parameters are written
to disk and the token must never be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from tabs import export_downloads, export_handlers
from tabs.common import AppContext, Focus, t

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
FOLLOW_EVERY_S = 5.0  # how often an open page checks for runs that finished since it listed them


@dataclass(frozen=True)
class JobWidgets:
    """The export job being followed: its folder, the poll timer, its status, log and Stop."""

    folder: Any
    """gr.State: the followed job's folder ("" for none)."""
    timer: Any
    status: Any
    stop_button: Any
    log_box: Any
    raw_log: Any

    @property
    def outputs(self) -> list:
        """What starting or attaching to a job sets: folder, status line, timer."""
        return [self.folder, self.status, self.timer]


@dataclass(frozen=True)
class GgufWidgets:
    quant_boxes: Any
    quant_reason: Any
    quant_note: Any
    merge_button: Any
    gguf_button: Any
    roundtrip_button: Any
    roundtrip_report: Any


@dataclass(frozen=True)
class FuseWidgets:
    runs: Any
    weights: Any
    method: Any
    density: Any
    name: Any
    button: Any


@dataclass(frozen=True)
class HubWidgets:
    note: Any
    what: Any
    token: Any
    repo: Any
    private: Any
    button: Any


@dataclass(frozen=True)
class SpaceWidgets:
    target: Any
    gguf: Any
    bundle: Any
    model_repo: Any
    button: Any
    push_button: Any


@dataclass(frozen=True)
class BackupWidgets:
    out: Any
    button: Any
    restore_path: Any
    restore_button: Any


@dataclass(frozen=True)
class ExportWidgets:
    """The whole tab, top to bottom: run picker and job, then one section per kind of export."""

    tab: Any
    run_picker: Any
    refresh_button: Any
    follow_timer: Any
    """Polls `made_signature`, so a run that finishes while the page stays open joins the pickers."""
    made: Any
    """gr.State: the signature the pickers were last listed at."""
    job: JobWidgets
    package_button: Any
    gguf: GgufWidgets
    fuse: FuseWidgets
    hub: HubWidgets
    space: SpaceWidgets
    backup: BackupWidgets
    downloads: export_downloads.Downloads


def build(ctx: AppContext) -> Focus:
    with gr.Tab(t("export.tab"), id="export") as tab:
        gr.Markdown(t("export.header"))
        folder, timer = gr.State(""), gr.Timer(1.0, active=False)
        with gr.Row():
            run_picker = gr.Dropdown([], label=t("export.run"), elem_id="export-run", scale=4)
            refresh_button = gr.Button(t("export.refresh"), scale=1, elem_id="export-refresh")
        job = _build_job(folder, timer)
        gr.Markdown(t("export.package_title"))
        package_button = gr.Button(t("export.package_button"), elem_id="export-package-button")
        sections = (_build_gguf(), _build_fuse(), _build_hub(), _build_space(), _build_backup())
        downloads = export_downloads.build(ctx, run_picker)
        follow = gr.Timer(FOLLOW_EVERY_S), gr.State("")
    ui = ExportWidgets(tab, run_picker, refresh_button, *follow, job, package_button, *sections, downloads)
    export_handlers.wire(ctx, ui)
    return Focus(run_picker, lambda run: gr.update(choices=export_handlers.finished_runs(ctx), value=run))


def _build_job(folder, timer) -> JobWidgets:
    status = gr.Markdown(elem_id="export-status")
    stop_button = gr.Button(t("export.stop"), size="sm")
    log_box = gr.Textbox(label=t("export.log"), lines=6, max_lines=12, interactive=False, elem_id="export-log")
    with gr.Accordion(t("export.raw_log"), open=False):
        raw_log = gr.Textbox(show_label=False, lines=8, max_lines=20, interactive=False, elem_id="export-raw-log")
    return JobWidgets(folder, timer, status, stop_button, log_box, raw_log)


def _build_gguf() -> GgufWidgets:
    gr.Markdown(t("export.gguf_title"))
    quant_boxes = gr.CheckboxGroup([], label=t("export.quant"), elem_id="export-quant")
    quant_reason, quant_note = gr.Markdown(elem_id="export-quant-reason"), gr.Markdown()
    with gr.Row():
        merge_button = gr.Button(t("export.merge_button"))
        gguf_button = gr.Button(t("export.gguf_button"), variant="primary", elem_id="export-gguf-button")
        roundtrip_button = gr.Button(t("export.roundtrip_button"), elem_id="export-roundtrip-button")
    return GgufWidgets(quant_boxes, quant_reason, quant_note, merge_button, gguf_button, roundtrip_button,
                       gr.Markdown(elem_id="export-roundtrip"))


def _build_fuse() -> FuseWidgets:
    gr.Markdown(t("export.fuse_title"))
    with gr.Row():
        runs = gr.Dropdown([], multiselect=True, label=t("export.fuse_runs"), scale=3)
        weights = gr.Textbox(label=t("export.fuse_weights"), scale=2)
    with gr.Row():
        method = gr.Radio(FUSE_METHODS, value="linear", label=t("export.fuse_method"))
        density = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label=t("export.fuse_density"))
        name = gr.Textbox(label=t("export.fuse_name"))
    return FuseWidgets(runs, weights, method, density, name, gr.Button(t("export.fuse_button")))


def _build_hub() -> HubWidgets:
    gr.Markdown(t("export.hub_title"))
    note = gr.Markdown(elem_id="export-hub-note")
    with gr.Row():
        what = gr.Dropdown(PUSHABLE, value="adapter", label=t("export.hub_what"))
        token = gr.Textbox(label=t("export.hub_token"), type="password", elem_id="export-hub-token")
        repo = gr.Textbox(label=t("export.hub_repo"), placeholder="user/my-assistant")
        private = gr.Checkbox(True, label=t("export.hub_private"))
    return HubWidgets(note, what, token, repo, private, gr.Button(t("export.hub_button"), elem_id="export-hub-button"))


def _build_space() -> SpaceWidgets:
    gr.Markdown(t("export.space_title"))
    with gr.Row():
        target = gr.Radio(["cpu", "zerogpu"], value="cpu", label=t("export.space_target"))
        gguf = gr.Dropdown([], label=t("export.space_gguf"))
        bundle = gr.Checkbox(True, label=t("export.space_bundle"))
        model_repo = gr.Textbox(label=t("export.space_model_repo"))
    with gr.Row():
        button = gr.Button(t("export.space_button"))
        push_button = gr.Button(t("export.space_push"))
    return SpaceWidgets(target, gguf, bundle, model_repo, button, push_button)


def _build_backup() -> BackupWidgets:
    gr.Markdown(t("export.backup_title"))
    with gr.Row():
        out = gr.Textbox(label=t("export.backup_out"), scale=3)
        button = gr.Button(t("export.backup_button"), scale=1)
    with gr.Row():
        restore_path = gr.Textbox(label=t("export.restore_path"), scale=3)
        restore_button = gr.Button(t("export.restore_button"), scale=1)
    return BackupWidgets(out, button, restore_path, restore_button)
