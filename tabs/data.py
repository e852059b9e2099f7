"""Data tab: load chat data in any of four formats, clean and dedupe it, look at the report, save a version.

A thin UI over `core.data`: the same `prepare` / `save_version` the CLI uses (the cleaning form is in
`tabs.data_form`). The prepared dataset lives in per-session `gr.State` until it is saved; uploads are copied
into the workspace first (originals kept).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from core.data import prepare, save_version, views
from core.data.options import UploadLimits
from core.data.versions import newest_report
from tabs import data_form, data_preferences
from tabs import documents as documents_ui
from tabs.common import TRAINED_COLOURS, AppContext, error_text, t
from tabs.messages import locale_of, say, translated_markdown

MAP_FIELDS = ("instruction", "input", "output", "system", "messages", "role", "content")

STRINGS = {
    "en": {
        "data.tab": "📚 Data",
        "data.header": "## Data\nLoad Alpaca, ShareGPT, UltraChat or OpenAI-messages files, then clean, dedupe, split and save one dataset.",
        "data.files": "Data files (JSON, JSONL, CSV, Parquet)",
        "data.paths": "…or paths on this machine, one per line (files or datasets folders)",
        "data.detected": "Detected formats",
        "data.mapping": "Column mapping (for files whose format was not detected)",
        "data.mapping_note": "Pick either instruction + response (+ input, system) fields, or the messages field with its role and content keys.",
        "data.map_instruction": "Instruction field", "data.map_input": "Input field (optional)",
        "data.map_output": "Response field", "data.map_system": "System field (optional)",
        "data.map_messages": "Messages field", "data.map_role": "Role key", "data.map_content": "Content key",
        "data.cleaning": "Cleaning",
        "data.nfc": "Unicode NFC + trim whitespace", "data.html": "HTML → text",
        "data.drop_empty": "Remove empty turns (off: drop the conversation)",
        "data.same_role": "Consecutive turns of one speaker", "data.ends": "Not starting with user / ending with assistant",
        "data.exact_dedup": "Remove exact duplicates",
        "data.near_dup": "Near-duplicate threshold (0 = off)",
        "data.max_tokens": "Token limit (0 = none)", "data.model": 'Tokenizer: "default", a model folder, or empty to estimate',
        "data.validation": "Validation share", "data.seed": "Seed",
        "data.max_drop": "Abort when more than this share is dropped",
        "data.caps": "Caps per source (source=N, …)",
        "data.name_value": "{{name}} =", "data.author_value": "{{author}} =",
        "data.run": "Run", "data.report": "Report", "data.histogram": "Length histogram",
        "data.preview": "Preview", "data.filter": "Show", "data.page": "Item",
        "data.prev": "◀ Previous", "data.next": "Next ▶", "data.raw": "Raw record",
        "data.template": "Render in the model's chat template", "data.template_out": "Trained tokens are highlighted",
        "data.dataset_name": "Dataset name", "data.save": "Save dataset", "data.saved_path": "Saved to",
        "data.versions": "Saved datasets",
        **data_preferences.STRINGS["en"],
    },
    "zh": {
        "data.tab": "📚 数据",
        "data.header": "## 数据\n加载 Alpaca、ShareGPT、UltraChat 或 OpenAI messages 文件，清洗、去重、划分并保存为一个数据集。",
        "data.files": "数据文件（JSON、JSONL、CSV、Parquet）",
        "data.paths": "……或本机上的路径，每行一个（文件或 datasets 文件夹）",
        "data.detected": "识别出的格式",
        "data.mapping": "字段映射（用于未能识别格式的文件）",
        "data.mapping_note": "选择指令 + 回答（+ 输入、系统）字段，或者选择消息字段及其角色和内容键。",
        "data.map_instruction": "指令字段", "data.map_input": "输入字段（可选）",
        "data.map_output": "回答字段", "data.map_system": "系统提示字段（可选）",
        "data.map_messages": "消息字段", "data.map_role": "角色键", "data.map_content": "内容键",
        "data.cleaning": "清洗",
        "data.nfc": "Unicode NFC 规范化并去除首尾空白", "data.html": "HTML 转纯文本",
        "data.drop_empty": "删除空轮次（关闭则丢弃整段对话）",
        "data.same_role": "同一角色连续发言", "data.ends": "不以用户开头或不以助手结尾",
        "data.exact_dedup": "删除完全重复",
        "data.near_dup": "近似重复阈值（0 = 关闭）",
        "data.max_tokens": "词元上限（0 = 不限）", "data.model": "分词器：\"default\"、模型文件夹，留空则估算",
        "data.validation": "验证集比例", "data.seed": "随机种子",
        "data.max_drop": "丢弃比例超过此值时中止",
        "data.caps": "每个来源的上限（来源=数量，……）",
        "data.name_value": "{{name}} =", "data.author_value": "{{author}} =",
        "data.run": "运行", "data.report": "报告", "data.histogram": "长度直方图",
        "data.preview": "预览", "data.filter": "显示", "data.page": "条目",
        "data.prev": "◀ 上一条", "data.next": "下一条 ▶", "data.raw": "原始记录",
        "data.template": "用模型的对话模板渲染", "data.template_out": "高亮部分为参与训练的词元",
        "data.dataset_name": "数据集名称", "data.save": "保存数据集", "data.saved_path": "保存位置",
        "data.versions": "已保存的数据集",
        **data_preferences.STRINGS["zh"],
    },
}


def build(ctx: AppContext) -> None:
    with gr.Tab(t("data.tab"), id="data") as tab:
        gr.Markdown(t("data.header"))
        ui = SimpleNamespace(tab=tab, prepared_state=gr.State(None))
        _build_inputs(ui)
        data_form.build_cleaning(ui)
        ui.run_button = gr.Button(t("data.run"), variant="primary", elem_id="data-run")
        ui.status = gr.Markdown(elem_id="data-status")
        _build_report(ui)
        _build_preview(ui)
        _build_saving(ui)
        data_preferences.build_section(ctx)
        documents_ui.build_generation(ctx)
    _wire(ctx, ui)


def _build_inputs(ui: SimpleNamespace) -> None:
    """Files or paths, the formats detected in them, and the column mapping for the undetected ones."""
    with gr.Row():
        ui.files = gr.File(label=t("data.files"), file_count="multiple", elem_id="data-files", scale=3)
        ui.paths = gr.Textbox(label=t("data.paths"), lines=4, elem_id="data-paths", scale=2)
    ui.detected = gr.Markdown(elem_id="data-detected")
    with gr.Accordion(t("data.mapping"), open=False, elem_id="data-mapping"):
        gr.Markdown(t("data.mapping_note"))
        with gr.Row():
            ui.mapping = [gr.Dropdown([], label=t(f"data.map_{name}"), allow_custom_value=True,
                                      elem_id=f"data-map-{name}") for name in MAP_FIELDS]


def _build_report(ui: SimpleNamespace) -> None:
    with gr.Accordion(t("data.report"), open=True):
        ui.report = gr.Markdown(elem_id="data-report")
        ui.histogram = gr.Plot(label=t("data.histogram"), elem_id="data-histogram")


def _build_preview(ui: SimpleNamespace) -> None:
    """One prepared (or dropped) conversation at a time, as chat, as its raw record, in the chat template."""
    with gr.Accordion(t("data.preview"), open=True):
        with gr.Row():
            ui.preview_filter = gr.Dropdown([views.KEPT], value=views.KEPT, label=t("data.filter"),
                                            elem_id="data-preview-filter")
            ui.page = gr.Number(1, precision=0, minimum=1, label=t("data.page"), elem_id="data-preview-page")
            ui.prev_button = gr.Button(t("data.prev"), elem_id="data-preview-prev")
            ui.next_button = gr.Button(t("data.next"), elem_id="data-preview-next")
        ui.where = gr.Markdown(elem_id="data-preview-where")
        with gr.Row():
            ui.preview_chat = gr.Chatbot(height=360, elem_id="data-preview-chat")
            ui.preview_raw = gr.JSON(label=t("data.raw"), elem_id="data-preview-raw")
        ui.template_button = gr.Button(t("data.template"), elem_id="data-template")
        ui.template_out = gr.HighlightedText(label=t("data.template_out"), elem_id="data-template-out",
                                             color_map=TRAINED_COLOURS)


def _build_saving(ui: SimpleNamespace) -> None:
    with gr.Row():
        ui.dataset_name = gr.Textbox("kestrel", label=t("data.dataset_name"), elem_id="data-name")
        ui.save_button = gr.Button(t("data.save"), variant="primary", elem_id="data-save")
    ui.saved_path = gr.Textbox(label=t("data.saved_path"), interactive=False, elem_id="data-saved-path")
    with gr.Accordion(t("data.versions"), open=False):
        ui.versions = gr.Markdown(elem_id="data-versions")


def _wire(ctx: AppContext, ui: SimpleNamespace) -> None:
    on = Handlers(ctx, ui)
    preview_inputs = [ui.prepared_state, ui.preview_filter, ui.page]
    preview_outputs = [ui.preview_chat, ui.preview_raw, ui.where]
    for trigger in (ui.files.change, ui.paths.blur):
        trigger(on.on_inputs_changed, [ui.files, ui.paths], [ui.detected, *ui.mapping])
    ui.run_button.click(on.on_run_clicked, {ui.files, ui.paths, *ui.option_widgets.values(), *ui.mapping},
                        [ui.prepared_state, ui.status, ui.report, ui.histogram, ui.preview_filter, ui.page]
                        ).then(on_preview_changed, preview_inputs, preview_outputs)
    for trigger in (ui.preview_filter.change, ui.page.change):
        trigger(on_preview_changed, preview_inputs, preview_outputs)
    ui.prev_button.click(lambda n: max(1, int(n or 1) - 1), ui.page, ui.page)
    ui.next_button.click(lambda n: int(n or 1) + 1, ui.page, ui.page)
    ui.template_button.click(on.on_template_clicked, [*preview_inputs, ui.model], [ui.template_out, ui.status])
    ui.save_button.click(on.on_save_clicked, [ui.prepared_state, ui.dataset_name],
                         [ui.saved_path, ui.status, ui.versions])
    ctx.demo.load(lambda: views.versions_table(ctx.workspace), outputs=ui.versions)
    gr.on([ctx.demo.load, ui.tab.select], on.on_data_opened, ui.prepared_state,
          [ui.status, ui.report, ui.histogram, ui.saved_path])


def on_preview_changed(prepared, choice, number):
    items = views.preview_items(prepared, choice)
    if not items:
        return [], None, ""
    index = min(max(int(number or 1), 1), len(items)) - 1
    item = items[index]
    return views.chat_view(item["messages"]), item["raw"], f"**{index + 1} / {len(items)}** · {item['where']}"


class Handlers:
    """The tab's handlers that read the workspace; Gradio names each event (its API name) after the method."""

    def __init__(self, ctx: AppContext, ui: SimpleNamespace):
        self.ctx, self.ui = ctx, ui

    def chosen_paths(self, uploaded, typed) -> list[Path]:
        """Uploads (copied into the workspace, idempotently) followed by the typed paths."""
        typed_paths = [Path(line.strip()).expanduser() for line in (typed or "").splitlines() if line.strip()]
        if typed_paths:  # a network visitor must not read the server's files (or the app's secrets) by path
            self.ctx.require_unlocked("Reading files by their path on this machine (upload them instead)")
        limits = UploadLimits.from_env()
        return [views.keep_upload(self.ctx.workspace, f, limits) for f in uploaded or []] + typed_paths

    def tokenizer_model(self, name: str) -> str:
        """The tokenizer field: a folder path is a server path too, so locked mode takes "default" only."""
        name = (name or "").strip()
        if name not in ("", "default"):
            self.ctx.require_unlocked(f"Reading the tokenizer folder {name}")
        return name

    def on_inputs_changed(self, uploaded, typed, request: gr.Request):
        locale = locale_of(request)
        try:
            table, fields, _ = views.detect_files(self.chosen_paths(uploaded, typed))
        except Exception as error:  # shown in the tab; nothing is lost
            return error_text(error, locale), *[gr.update() for _ in MAP_FIELDS]
        return translated_markdown(table, locale), *[gr.update(choices=["", *fields]) for _ in MAP_FIELDS]

    def on_run_clicked(self, form: dict, request: gr.Request, progress=gr.Progress()):
        ui, locale = self.ui, locale_of(request)
        try:
            options = data_form.options_from({field: form[widget] for field, widget in ui.option_widgets.items()})
            mapping = data_form.mapping_from({field: form[widget] for field, widget in zip(MAP_FIELDS, ui.mapping)})
            progress(0, desc=say("data.loading_tokenizer", locale))
            self.tokenizer_model(options.model)
            result = prepare(views.sources_for(self.chosen_paths(form[ui.files], form[ui.paths]), mapping), options,
                             progress=lambda step, total, message: progress((step, total), desc=message))
        except Exception as error:
            return None, error_text(error, locale), "", None, gr.update(), 1
        from core.data.report import to_markdown

        choices = views.preview_choices(result)
        return (result, say("data.kept", locale, kept=f"{result.report['kept']:,}"),
                translated_markdown(to_markdown(result.report), locale),
                views.histogram_figure(result.report), gr.update(choices=choices, value=views.KEPT), 1)

    def on_template_clicked(self, prepared, choice, number, model_name):
        items = views.preview_items(prepared, choice)
        if not items:
            return [], ""
        item = items[min(max(int(number or 1), 1), len(items)) - 1]
        try:
            return views.template_runs(item["messages"], self.tokenizer_model(model_name)), ""
        except Exception as error:
            return [], error_text(error)

    def on_save_clicked(self, prepared, name, request: gr.Request):
        if prepared is None:
            return "", say("data.run_first", locale_of(request)), gr.update()
        try:
            folder = save_version(self.ctx.workspace, prepared, name or "dataset")
        except Exception as error:
            return "", error_text(error, locale_of(request)), gr.update()
        return str(folder), f"💾 {folder.name}", views.versions_table(self.ctx.workspace)

    def on_data_opened(self, prepared, request: gr.Request):
        """With nothing prepared in this page, the newest saved version's report, so the tab is not blank."""
        shown = None if prepared is not None else newest_report(self.ctx.workspace)
        if shown is None:
            return gr.update(), gr.update(), gr.update(), gr.update()
        folder, text, report_data = shown
        try:
            figure = views.histogram_figure(report_data)
        except (KeyError, TypeError, IndexError):  # an older report without the histogram: the text still shows
            figure = None
        locale = locale_of(request)
        return (say("data.newest", locale, name=folder.name), translated_markdown(text, locale), figure,
                str(folder))
