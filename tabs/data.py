"""Data tab: load chat data in any of four formats, clean and dedupe it, look at the report, save a version.

A thin UI over `core.data`: the same `prepare` / `save_version` the CLI uses. The prepared dataset lives in
per-session `gr.State` until it is saved; uploads are copied into the workspace first (originals kept).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.data import ColumnMapping, PrepareOptions, prepare, save_version, views
from core.data.options import UploadLimits
from core.data.versions import newest_report
from tabs import data_preferences
from tabs import documents as documents_ui
from tabs.common import TRAINED_COLOURS, AppContext, error_text, t

DEFAULTS = PrepareOptions()
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
        prepared_state = gr.State(None)
        with gr.Row():
            files = gr.File(label=t("data.files"), file_count="multiple", elem_id="data-files", scale=3)
            paths = gr.Textbox(label=t("data.paths"), lines=4, elem_id="data-paths", scale=2)
        detected = gr.Markdown(elem_id="data-detected")
        with gr.Accordion(t("data.mapping"), open=False, elem_id="data-mapping"):
            gr.Markdown(t("data.mapping_note"))
            with gr.Row():
                mapping = [gr.Dropdown([], label=t(f"data.map_{name}"), allow_custom_value=True,
                                       elem_id=f"data-map-{name}") for name in MAP_FIELDS]
        with gr.Accordion(t("data.cleaning"), open=False, elem_id="data-cleaning"):
            with gr.Row():
                nfc = gr.Checkbox(DEFAULTS.nfc, label=t("data.nfc"), elem_id="data-nfc")
                html = gr.Checkbox(DEFAULTS.html_to_text, label=t("data.html"), elem_id="data-html")
                drop_empty = gr.Checkbox(DEFAULTS.drop_empty_turns, label=t("data.drop_empty"))
                exact_dedup = gr.Checkbox(DEFAULTS.exact_dedup, label=t("data.exact_dedup"))
            with gr.Row():
                same_role = gr.Radio(["merge", "drop"], value=DEFAULTS.same_role, label=t("data.same_role"))
                ends = gr.Radio(["trim", "drop"], value=DEFAULTS.ends, label=t("data.ends"))
                near_dup = gr.Slider(0, 1, DEFAULTS.near_dup_threshold, step=0.05, label=t("data.near_dup"),
                                     elem_id="data-near-dup")
            with gr.Row():
                max_tokens = gr.Number(DEFAULTS.max_tokens, precision=0, minimum=0, label=t("data.max_tokens"))
                model = gr.Textbox(DEFAULTS.model, label=t("data.model"), elem_id="data-model")
                validation = gr.Slider(0, 0.5, DEFAULTS.validation_share, step=0.01, label=t("data.validation"))
                seed = gr.Number(DEFAULTS.seed, precision=0, label=t("data.seed"))
            with gr.Row():
                max_drop = gr.Slider(0.05, 1, DEFAULTS.max_drop_share, step=0.05, label=t("data.max_drop"))
                caps = gr.Textbox(label=t("data.caps"), elem_id="data-caps")
                name_value = gr.Textbox(DEFAULTS.placeholders["name"], label=t("data.name_value"))
                author_value = gr.Textbox(DEFAULTS.placeholders["author"], label=t("data.author_value"))
        run_button = gr.Button(t("data.run"), variant="primary", elem_id="data-run")
        status = gr.Markdown(elem_id="data-status")
        with gr.Accordion(t("data.report"), open=True):
            report = gr.Markdown(elem_id="data-report")
            histogram = gr.Plot(label=t("data.histogram"), elem_id="data-histogram")
        with gr.Accordion(t("data.preview"), open=True):
            with gr.Row():
                preview_filter = gr.Dropdown([views.KEPT], value=views.KEPT, label=t("data.filter"),
                                             elem_id="data-preview-filter")
                page = gr.Number(1, precision=0, minimum=1, label=t("data.page"), elem_id="data-preview-page")
                prev_button = gr.Button(t("data.prev"), elem_id="data-preview-prev")
                next_button = gr.Button(t("data.next"), elem_id="data-preview-next")
            where = gr.Markdown(elem_id="data-preview-where")
            with gr.Row():
                preview_chat = gr.Chatbot(height=360, elem_id="data-preview-chat")
                preview_raw = gr.JSON(label=t("data.raw"), elem_id="data-preview-raw")
            template_button = gr.Button(t("data.template"), elem_id="data-template")
            template_out = gr.HighlightedText(label=t("data.template_out"), elem_id="data-template-out",
                                              color_map=TRAINED_COLOURS)
        with gr.Row():
            dataset_name = gr.Textbox("kestrel", label=t("data.dataset_name"), elem_id="data-name")
            save_button = gr.Button(t("data.save"), variant="primary", elem_id="data-save")
        saved_path = gr.Textbox(label=t("data.saved_path"), interactive=False, elem_id="data-saved-path")
        with gr.Accordion(t("data.versions"), open=False):
            versions = gr.Markdown(elem_id="data-versions")
        data_preferences.build_section(ctx)
        documents_ui.build_generation(ctx)

    def chosen_paths(uploaded, typed) -> list[Path]:
        """Uploads (copied into the workspace, idempotently) followed by the typed paths."""
        typed_paths = [Path(line.strip()).expanduser() for line in (typed or "").splitlines() if line.strip()]
        if typed_paths:  # a network visitor must not read the server's files (or the app's secrets) by path
            ctx.require_unlocked("Reading files by their path on this machine (upload them instead)")
        limits = UploadLimits.from_env()
        return [views.keep_upload(ctx.workspace, f, limits) for f in uploaded or []] + typed_paths

    def tokenizer_model(name: str) -> str:
        """The tokenizer field: a folder path is a server path too, so locked mode takes "default" only."""
        name = (name or "").strip()
        if name not in ("", "default"):
            ctx.require_unlocked(f"Reading the tokenizer folder {name}")
        return name

    def on_inputs_changed(uploaded, typed):
        try:
            table, fields, _ = views.detect_files(chosen_paths(uploaded, typed))
        except Exception as error:  # shown in the tab; nothing is lost
            return error_text(error), *[gr.update() for _ in MAP_FIELDS]
        return table, *[gr.update(choices=["", *fields]) for _ in MAP_FIELDS]

    # Each widget bound to the option it sets by name: Gradio hands a handler whose inputs are a set of
    # components one {component: value} dict, so reordering the widgets can never shift an option.
    option_widgets = {"nfc": nfc, "html_to_text": html, "drop_empty_turns": drop_empty, "same_role": same_role,
                      "ends": ends, "exact_dedup": exact_dedup, "near_dup_threshold": near_dup,
                      "max_tokens": max_tokens, "model": model, "validation_share": validation, "seed": seed,
                      "max_drop_share": max_drop, "caps": caps, "name": name_value, "author": author_value}
    mapping_widgets = dict(zip(MAP_FIELDS, mapping))

    def on_run_clicked(form: dict, progress=gr.Progress()):
        uploaded, typed = form[files], form[paths]
        try:
            options = _options({field: form[widget] for field, widget in option_widgets.items()})
            mapping = _mapping({field: form[widget] for field, widget in mapping_widgets.items()})
            progress(0, desc="Loading the tokenizer…")
            tokenizer_model(options.model)
            result = prepare(views.sources_for(chosen_paths(uploaded, typed), mapping), options,
                             progress=lambda step, total, message: progress((step, total), desc=message))
        except Exception as error:
            return None, error_text(error), "", None, gr.update(), 1
        from core.data.report import to_markdown

        choices = views.preview_choices(result)
        return (result, f"✅ {result.report['kept']:,} conversations kept.", to_markdown(result.report),
                views.histogram_figure(result.report), gr.update(choices=choices, value=views.KEPT), 1)

    def on_preview_changed(prepared, choice, number):
        items = views.preview_items(prepared, choice)
        if not items:
            return [], None, ""
        index = min(max(int(number or 1), 1), len(items)) - 1
        item = items[index]
        return views.chat_view(item["messages"]), item["raw"], f"**{index + 1} / {len(items)}** · {item['where']}"

    def on_template_clicked(prepared, choice, number, model_name):
        items = views.preview_items(prepared, choice)
        if not items:
            return [], ""
        item = items[min(max(int(number or 1), 1), len(items)) - 1]
        try:
            return views.template_runs(item["messages"], tokenizer_model(model_name)), ""
        except Exception as error:
            return [], error_text(error)

    def on_save_clicked(prepared, name):
        if prepared is None:
            return "", "❌ Run the preparation first.", gr.update()
        try:
            folder = save_version(ctx.workspace, prepared, name or "dataset")
        except Exception as error:
            return "", error_text(error), gr.update()
        return str(folder), f"💾 {folder.name}", views.versions_table(ctx.workspace)

    preview_inputs = [prepared_state, preview_filter, page]
    preview_outputs = [preview_chat, preview_raw, where]
    for trigger in (files.change, paths.blur):
        trigger(on_inputs_changed, [files, paths], [detected, *mapping])
    run_button.click(on_run_clicked, {files, paths, *option_widgets.values(), *mapping_widgets.values()},
                     [prepared_state, status, report, histogram, preview_filter, page]
                     ).then(on_preview_changed, preview_inputs, preview_outputs)
    for trigger in (preview_filter.change, page.change):
        trigger(on_preview_changed, preview_inputs, preview_outputs)
    prev_button.click(lambda n: max(1, int(n or 1) - 1), page, page)
    next_button.click(lambda n: int(n or 1) + 1, page, page)
    template_button.click(on_template_clicked, [*preview_inputs, model], [template_out, status])
    save_button.click(on_save_clicked, [prepared_state, dataset_name], [saved_path, status, versions])
    ctx.demo.load(lambda: views.versions_table(ctx.workspace), outputs=versions)

    def on_data_opened(prepared):
        """With nothing prepared in this page, the newest saved version's report, so the tab is not blank."""
        shown = None if prepared is not None else newest_report(ctx.workspace)
        if shown is None:
            return gr.update(), gr.update(), gr.update(), gr.update()
        folder, text, report_data = shown
        try:
            figure = views.histogram_figure(report_data)
        except (KeyError, TypeError, IndexError):  # an older report without the histogram: the text still shows
            figure = None
        return f"📂 The newest saved dataset, `{folder.name}`; **Run** prepares a new one.", text, figure, str(folder)

    gr.on([ctx.demo.load, tab.select], on_data_opened, prepared_state, [status, report, histogram, saved_path])


def _options(form: dict) -> PrepareOptions:
    """The cleaning form's values, keyed by `PrepareOptions` field (and the two placeholder names)."""
    return PrepareOptions(
        nfc=form["nfc"], html_to_text=form["html_to_text"], drop_empty_turns=form["drop_empty_turns"],
        same_role=form["same_role"], ends=form["ends"], exact_dedup=form["exact_dedup"],
        near_dup_threshold=float(form["near_dup_threshold"]), max_tokens=int(form["max_tokens"] or 0),
        model=(form["model"] or "").strip(), validation_share=float(form["validation_share"]),
        seed=int(form["seed"] or 0), max_drop_share=float(form["max_drop_share"]),
        caps=views.parse_caps(form["caps"] or ""), placeholders={"name": form["name"], "author": form["author"]})


def _mapping(form: dict) -> ColumnMapping | None:
    chosen = {name: value for name, value in form.items() if value}
    return ColumnMapping(**chosen) if chosen.keys() - {"role", "content"} else None
