"""Chat tab: streaming multi-turn chat with the default model, any run's adapter or any exported GGUF.

The conversation lives in a per-session `gr.State` of canonical messages; the Chatbot only shows it.
This module lays out the tab's sections (`_build_*`) and wires them to named handlers (`on_*`); how an
answer is produced and shown is in `tabs.chat_answer`, the logic in core.inference and core.chat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import chat, chat_saving, feedback, inference
from core.errors import BadInputError
from core.inference import GenerationSettings
from core.inference.choices import made_signature
from tabs import documents as documents_ui
from tabs.chat_answer import (chat_view, find_choice, model_label, picker_choices, respond,  # noqa: F401
                              stop_event, take_back_last_question)
from tabs.common import AppContext, Focus, error_text, gate_note, refreshed, t
from tabs.messages import locale_of

STRINGS = {
    "en": {
        "chat.tab": "💬 Chat",
        "chat.header": "## Chat\nTalk to the base model, a fine-tuned adapter or an exported GGUF.",
        "chat.model": "Model", "chat.refresh": "🔄 Refresh list",
        "chat.settings": "Generation settings", "chat.system": "System prompt",
        "chat.system_placeholder": "You are a helpful assistant.",
        "chat.temperature": "Temperature (0 = greedy)", "chat.top_p": "Top-p", "chat.top_k": "Top-k (0 = off)",
        "chat.repetition": "Repetition penalty", "chat.max_new": "Max new tokens",
        "chat.seed": "Seed (0 = a new one for each answer, so Regenerate gives a new answer)",
        "chat.input": "Message", "chat.placeholder": "Ask something…",
        "chat.send": "Send", "chat.stop": "Stop", "chat.regenerate": "🔁 Regenerate",
        "chat.edit": "✏️ Edit last message", "chat.clear": "Clear",
        "chat.save_format": "Save as", "chat.save": "💾 Save conversation", "chat.saved_file": "Saved file",
        "chat.save_example": "➕ Save as training example",
    },
    "zh": {
        "chat.tab": "💬 对话",
        "chat.header": "## 对话\n与基础模型、微调后的适配器或导出的 GGUF 对话。",
        "chat.model": "模型", "chat.refresh": "🔄 刷新列表",
        "chat.settings": "生成设置", "chat.system": "系统提示词",
        "chat.system_placeholder": "你是一个乐于助人的助手。",
        "chat.temperature": "温度（0 = 贪心）", "chat.top_p": "Top-p", "chat.top_k": "Top-k（0 = 关闭）",
        "chat.repetition": "重复惩罚", "chat.max_new": "最大新 token 数",
        "chat.seed": "随机种子（0 = 每次回答换一个，重新生成会得到新回答）",
        "chat.input": "消息", "chat.placeholder": "问点什么…",
        "chat.send": "发送", "chat.stop": "停止", "chat.regenerate": "🔁 重新生成",
        "chat.edit": "✏️ 编辑上一条消息", "chat.clear": "清空",
        "chat.save_format": "保存格式", "chat.save": "💾 保存对话", "chat.saved_file": "已保存的文件",
        "chat.save_example": "➕ 保存为训练样本",
    },
}
FOLLOW_EVERY_S = 5.0  # how often an open page checks for runs and exports that finished since it listed them


@dataclass(frozen=True)
class Widgets:
    """The tab's widgets that handlers read or write."""

    tab: Any
    model_picker: Any
    refresh_button: Any
    model_note: Any
    collection_picker: Any
    follow_timer: Any
    """Polls `made_signature`, so a run or export that finishes while the page stays open joins the picker."""
    made: Any
    """gr.State: the signature the picker was last listed at."""
    settings: list
    """Model, system prompt, sampling knobs and collection: what every answer is produced with."""
    chatbot: Any
    conversation: Any
    """gr.State: the canonical messages (with the model that wrote each answer and its citations)."""
    message: Any
    send_button: Any
    stop_button: Any
    regenerate_button: Any
    edit_button: Any
    clear_button: Any
    status: Any
    memory: Any
    save_format: Any
    save_button: Any
    example_button: Any
    saved_file: Any


def build(ctx: AppContext) -> Focus:
    with gr.Tab(t("chat.tab"), id="chat") as tab:
        gr.Markdown(t("chat.header"))
        picker = _build_picker(ctx)
        model_picker, collection_picker = picker[0], picker[3]
        settings = [model_picker, *_build_settings(), collection_picker]
        talk = _build_conversation()
        saving = _build_saving()
    widgets = Widgets(tab, *picker, settings, *talk, *saving)
    _wire_picker(ctx, widgets)
    _wire_conversation(ctx, widgets)
    _wire_feedback(ctx, widgets)
    _wire_saving(ctx, widgets)
    return Focus(model_picker, lambda choice_id: gr.update(choices=picker_choices(ctx), value=choice_id))


def _build_picker(ctx: AppContext) -> tuple:
    with gr.Row():
        model_picker = gr.Dropdown(picker_choices(ctx), value="default", label=t("chat.model"), scale=4,
                                   elem_id="chat-model")
        refresh_button = gr.Button(t("chat.refresh"), scale=1, elem_id="chat-refresh")
    model_note = gr.Markdown(elem_id="chat-model-note")
    collection_picker = documents_ui.picker(ctx, "chat-documents")
    documents_ui.build_panel(ctx, collection_picker)
    return model_picker, refresh_button, model_note, collection_picker, gr.Timer(FOLLOW_EVERY_S), gr.State("")


def _build_settings() -> list:
    """System prompt, temperature, top-p, top-k, repetition penalty, max new tokens, seed (in that order)."""
    defaults = GenerationSettings()
    with gr.Accordion(t("chat.settings"), open=False):
        system_box = gr.Textbox(label=t("chat.system"), placeholder=t("chat.system_placeholder"),
                                elem_id="chat-system")
        with gr.Row():
            temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label=t("chat.temperature"))
            top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.05, label=t("chat.top_p"))
            top_k = gr.Slider(0, 200, value=defaults.top_k, step=1, label=t("chat.top_k"))
        with gr.Row():
            repetition = gr.Slider(0.5, 2, value=defaults.repetition_penalty, step=0.05, label=t("chat.repetition"))
            max_new = gr.Slider(1, 4096, value=defaults.max_new_tokens, step=1, label=t("chat.max_new"),
                                elem_id="chat-max-new")
            seed = gr.Number(value=0, precision=0, minimum=0, label=t("chat.seed"), elem_id="chat-seed")
    return [system_box, temperature, top_p, top_k, repetition, max_new, seed]


def _build_conversation() -> tuple:
    # 👍 / 👎 on an answer and ✏️ editing it into a better one are kept as training feedback (core.feedback).
    chatbot = gr.Chatbot(height=420, show_label=False, elem_id="chatbot", editable="all")
    conversation = gr.State([])
    with gr.Row():
        message = gr.Textbox(label=t("chat.input"), placeholder=t("chat.placeholder"), scale=5,
                             max_length=chat.MAX_INPUT_CHARS, elem_id="chat-input")
        send_button = gr.Button(t("chat.send"), variant="primary", scale=1, elem_id="chat-send")
        stop_button = gr.Button(t("chat.stop"), variant="stop", scale=1, elem_id="chat-stop")
    with gr.Row():
        regenerate_button = gr.Button(t("chat.regenerate"), size="sm", elem_id="chat-regenerate")
        edit_button = gr.Button(t("chat.edit"), size="sm", elem_id="chat-edit")
        clear_button = gr.Button(t("chat.clear"), size="sm", elem_id="chat-clear")
    status = gr.Markdown(elem_id="chat-status")
    memory = gr.Markdown(elem_id="chat-memory")
    return (chatbot, conversation, message, send_button, stop_button, regenerate_button, edit_button, clear_button,
            status, memory)


def _build_saving() -> tuple:
    with gr.Row():
        save_format = gr.Radio(["json", "markdown"], value="json", label=t("chat.save_format"))
        save_button = gr.Button(t("chat.save"), size="sm", elem_id="chat-save")
        example_button = gr.Button(t("chat.save_example"), size="sm", elem_id="chat-save-example")
    saved_file = gr.File(label=t("chat.saved_file"), interactive=False, height=60, elem_id="chat-saved-file")
    return save_format, save_button, example_button, saved_file


def _wire_picker(ctx: AppContext, w: Widgets) -> None:
    def on_load(request: gr.Request = None):
        locale = locale_of(request)
        return (gr.update(choices=picker_choices(ctx, locale)), gate_note(ctx.capabilities().gguf_chat, locale),
                gr.update(choices=documents_ui.collection_choices(ctx)))

    def on_refresh_click(current: str, current_documents: str, request: gr.Request = None):
        return (refreshed(picker_choices(ctx, locale_of(request)), current, "default"),
                refreshed(documents_ui.collection_choices(ctx), current_documents, ""))

    def on_model_change(choice_id: str, progress=gr.Progress()):
        try:
            choice = find_choice(ctx, choice_id)
            started = time.perf_counter()
            inference.open_backend(choice, ctx.workspace, progress=lambda f, m: progress(f, desc=m))
            return f"✅ {choice.label} ready ({time.perf_counter() - started:.1f} s)", chat.memory_text()
        except Exception as error:  # shown beside the picker; the chat keeps working with its history
            return error_text(error), chat.memory_text()

    def on_follow_tick(seen: str, current: str, request: gr.Request = None):
        """Between tab visits, a run trained or a GGUF exported elsewhere joins the list without a click."""
        now = made_signature(ctx.workspace)
        if now == seen:
            return seen, gr.update()
        return now, refreshed(picker_choices(ctx, locale_of(request)), current, "default")

    ctx.demo.load(on_load, outputs=[w.model_picker, w.model_note, w.collection_picker])
    # Opening the tab lists what was trained or exported since the page loaded, as Refresh does.
    gr.on([w.refresh_button.click, w.tab.select], on_refresh_click, [w.model_picker, w.collection_picker],
          [w.model_picker, w.collection_picker])
    w.model_picker.change(on_model_change, w.model_picker, [w.model_note, w.memory])
    w.follow_timer.tick(on_follow_tick, [w.made, w.model_picker], [w.made, w.model_picker], show_progress="hidden")


def _wire_conversation(ctx: AppContext, w: Widgets) -> None:
    # Gradio passes inputs by position and finds gr.Request among named parameters only, hence no *args.
    def on_send(text, history, choice_id, system, temperature, top_p, top_k, repetition, max_new, seed, documents,
                request: gr.Request):
        settings_values = (choice_id, system, temperature, top_p, top_k, repetition, max_new, seed, documents)
        text = text or ""
        try:
            chat.check_input(text)
        except BadInputError as error:
            yield chat_view(history), history, text, error_text(error, locale_of(request)), gr.update()
            return
        if not text.strip():  # e.g. a second press of Send that waited for the answer before it
            yield gr.update(), gr.update(), "", gr.update(), gr.update()
            return
        history = [*history, {"role": "user", "content": text}]
        box = ""  # the box is emptied once, so what the user types while the answer streams stays there
        for shown, line in respond(ctx, history, *settings_values, session=request.session_hash,
                                   locale=locale_of(request)):
            yield chat_view(shown), shown, box, line, gr.update()
            box = gr.update()
        yield gr.update(), gr.update(), gr.update(), gr.update(), chat.memory_text()

    def on_regenerate_click(history, choice_id, system, temperature, top_p, top_k, repetition, max_new, seed,
                            documents, request: gr.Request):
        settings_values = (choice_id, system, temperature, top_p, top_k, repetition, max_new, seed, documents)
        while history and history[-1]["role"] == "assistant":
            history = history[:-1]
        if not history:
            yield chat_view(history), history, "", gr.update()
            return
        for shown, line in respond(ctx, history, *settings_values, session=request.session_hash,
                                   locale=locale_of(request)):
            yield chat_view(shown), shown, line, gr.update()
        yield gr.update(), gr.update(), gr.update(), chat.memory_text()

    def on_edit_click(history):
        kept, question = take_back_last_question(history)
        return chat_view(kept), kept, question if question is not None else gr.update()

    def on_stop_click(request: gr.Request):
        stop_event(request.session_hash).set()

    send_outputs = [w.chatbot, w.conversation, w.message, w.status, w.memory]
    # One event for the button and Enter, so two questions never stream at once. A question sent while an
    # answer streams is asked when it ends: Gradio's default for a click ("once") would drop it silently.
    gr.on([w.send_button.click, w.message.submit], on_send, [w.message, w.conversation, *w.settings],
          send_outputs, trigger_mode="always_last")
    w.regenerate_button.click(on_regenerate_click, [w.conversation, *w.settings],
                              [w.chatbot, w.conversation, w.status, w.memory])
    w.edit_button.click(on_edit_click, w.conversation, [w.chatbot, w.conversation, w.message])
    w.stop_button.click(on_stop_click, queue=False)
    w.clear_button.click(lambda: ([], [], ""), outputs=[w.chatbot, w.conversation, w.status])


def _wire_feedback(ctx: AppContext, w: Widgets) -> None:
    """👍 / 👎 and edits of an answer, kept as training feedback."""
    def on_liked(history, choice_id, event: gr.LikeData):
        index = event.index if isinstance(event.index, int) else event.index[0]
        liked = event.liked if isinstance(event.liked, bool) else None
        try:
            feedback.rate(ctx.workspace, history, index, model_label(ctx, choice_id), liked=liked)
        except Exception as error:  # shown in the status line
            return error_text(error)
        return (f"{'👍' if liked else '👎' if liked is False else '↩️'} Rating saved; the Data tab's preference "
                "section turns ratings into training data.")

    def on_edited(history, choice_id, event: gr.EditData):
        index = event.index if isinstance(event.index, int) else event.index[0]
        try:
            edited, row = feedback.apply_edit(ctx.workspace, history, index, chat.unmark(event.value),
                                              model_label(ctx, choice_id))
        except Exception as error:  # the conversation stays as it was
            return history, history, error_text(error)
        note = "✏️ Better answer saved as a preference pair (your edit over the original)." if row else "✏️ Edited."
        return edited, edited, note

    w.chatbot.like(on_liked, [w.conversation, w.model_picker], w.status)
    w.chatbot.edit(on_edited, [w.conversation, w.model_picker], [w.chatbot, w.conversation, w.status])


def _wire_saving(ctx: AppContext, w: Widgets) -> None:
    def on_save_click(history, fmt, choice_id):
        try:
            path = chat_saving.save_conversation(ctx.workspace, history, find_choice(ctx, choice_id).label, fmt)
            return str(path), f"💾 Saved to {path}"
        except Exception as error:  # shown in the status line
            return None, error_text(error)

    def on_example_click(history):
        try:
            path, added = chat_saving.save_training_example(ctx.workspace, history)
            return (f"➕ Added to {path.name}; the Data tab loads it as a chat dataset." if added
                    else f"ℹ️ This conversation is already in {path.name}.")
        except Exception as error:  # shown in the status line
            return error_text(error)

    w.save_button.click(on_save_click, [w.conversation, w.save_format, w.model_picker], [w.saved_file, w.status])
    w.example_button.click(on_example_click, w.conversation, w.status)
