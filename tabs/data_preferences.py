"""The Data tab's preference section: build a preference dataset version from arena votes, chat ratings
and preference files (the same `core.data` code as `python -m core.data preferences`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr

from core.data import views
from core.data.preference_cli import build
from core.data.preference_versions import save_preferences
from core.data.preferences import DEFAULTS, to_markdown
from tabs.common import AppContext, error_text, t

STRINGS = {
    "en": {"data.prefs": "Preference data for DPO / KTO (from votes, chat ratings or files)",
           "data.prefs_note": ("Arena votes A/B become pairs (a tie gives none, 'both bad' two bad answers; flagged "
                               "raters are left out). Chat thumbs become good or bad answers, an edited answer a "
                               "pair. Files: prompt/chosen/rejected (UltraFeedback style), Anthropic HH "
                               "transcripts, or prompt/completion/label (KTO)."),
           "data.prefs_arena": "Arena votes", "data.prefs_chat": "Chat ratings",
           "data.prefs_files": "Preference files", "data.prefs_skip": "Skip bad rows (list them) instead of refusing",
           "data.prefs_validation": "Held-out share", "data.prefs_name": "Name",
           "data.prefs_build": "Build preference dataset"},
    "zh": {"data.prefs": "用于 DPO / KTO 的偏好数据（来自投票、对话评价或文件）",
           "data.prefs_note": ("竞技场中的 A/B 投票成为偏好对（平局不产生，“都不好”产生两个差回答；被标记的评分者除外）。"
                               "对话中的点赞/点踩成为好/差回答，被修改的回答成为偏好对。文件：prompt/chosen/rejected"
                               "（UltraFeedback 风格）、Anthropic HH 对话记录，或 prompt/completion/label（KTO）。"),
           "data.prefs_arena": "竞技场投票", "data.prefs_chat": "对话评价",
           "data.prefs_files": "偏好数据文件", "data.prefs_skip": "跳过坏行（并列出）而不是拒绝",
           "data.prefs_validation": "留出比例", "data.prefs_name": "名称",
           "data.prefs_build": "生成偏好数据集"},
}


def build_section(ctx: AppContext) -> None:
    with gr.Accordion(t("data.prefs"), open=False, elem_id="data-prefs"):
        gr.Markdown(t("data.prefs_note"))
        with gr.Row():
            arena = gr.Checkbox(True, label=t("data.prefs_arena"), elem_id="data-prefs-arena")
            chat = gr.Checkbox(True, label=t("data.prefs_chat"), elem_id="data-prefs-chat")
            skip = gr.Checkbox(False, label=t("data.prefs_skip"), elem_id="data-prefs-skip")
            validation = gr.Slider(0, 0.5, DEFAULTS.validation_share, step=0.05, label=t("data.prefs_validation"))
            name = gr.Textbox("votes", label=t("data.prefs_name"), elem_id="data-prefs-name")
        files = gr.File(label=t("data.prefs_files"), file_count="multiple", height=80, elem_id="data-prefs-files")
        build_button = gr.Button(t("data.prefs_build"), variant="primary", elem_id="data-prefs-build")
        status = gr.Markdown(elem_id="data-prefs-status")
        report = gr.Markdown(elem_id="data-prefs-report")

    def on_build_clicked(use_arena, use_chat, skip_bad, share, dataset_name, uploaded):
        try:
            paths = [views.keep_upload(ctx.workspace, Path(f)) for f in uploaded or []]
            options = dataclasses.replace(DEFAULTS, validation_share=float(share))
            prepared = build(paths, ctx.workspace, bool(use_arena), bool(use_chat), options, bool(skip_bad))
            folder = save_preferences(ctx.workspace, prepared, dataset_name or "votes")
        except Exception as error:  # shown in place; nothing is written
            return error_text(error), ""
        found = prepared.report
        return (f"💾 {found['pairs']:,} pairs and {found['unpaired']:,} rated answers saved as `{folder}`; pick it in "
                f"Train with method DPO (pairs) or KTO.", to_markdown(found))

    build_button.click(on_build_clicked, [arena, chat, skip, validation, name, files], [status, report],
                       api_name="build_preferences")
