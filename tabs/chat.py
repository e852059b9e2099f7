"""Chat tab: streaming multi-turn chat with the default model, any run's adapter or any exported GGUF.

The conversation lives in a per-session `gr.State` of canonical messages; the Chatbot only shows it.
Stop works through a per-session event that the backends honour (Gradio's `cancels` would abandon the
generator without closing it, leaving the model decoding and locked). The logic is in core.inference
and core.chat; this module lays out widgets and wires them.
"""

from __future__ import annotations

import threading
import time

import gradio as gr

from core import chat, feedback, inference
from core.documents import open_collection
from core.documents.grounding import GroundedBackend
from core.errors import BadInputError
from core.inference import GenerationSettings
from tabs import documents as documents_ui
from tabs.common import AppContext, Focus, error_text, gate_note, refreshed, t

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
UPDATE_EVERY_S = 0.08  # how often a streaming answer is redrawn
_stops: dict[str, threading.Event] = {}  # per browser session: Stop sets it, the running answer reads it


def build(ctx: AppContext) -> Focus:
    defaults = GenerationSettings()
    with gr.Tab(t("chat.tab"), id="chat") as tab:
        gr.Markdown(t("chat.header"))
        with gr.Row():
            model_picker = gr.Dropdown(_picker_choices(ctx), value="default", label=t("chat.model"), scale=4,
                                       elem_id="chat-model")
            refresh_button = gr.Button(t("chat.refresh"), scale=1, elem_id="chat-refresh")
        model_note = gr.Markdown(elem_id="chat-model-note")
        collection_picker = documents_ui.picker(ctx, "chat-documents")
        documents_ui.build_panel(ctx, collection_picker)
        with gr.Accordion(t("chat.settings"), open=False):
            system_box = gr.Textbox(label=t("chat.system"), placeholder=t("chat.system_placeholder"),
                                    elem_id="chat-system")
            with gr.Row():
                temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label=t("chat.temperature"))
                top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.05, label=t("chat.top_p"))
                top_k = gr.Slider(0, 200, value=defaults.top_k, step=1, label=t("chat.top_k"))
            with gr.Row():
                repetition = gr.Slider(0.5, 2, value=defaults.repetition_penalty, step=0.05,
                                       label=t("chat.repetition"))
                max_new = gr.Slider(1, 4096, value=defaults.max_new_tokens, step=1, label=t("chat.max_new"),
                                    elem_id="chat-max-new")
                seed = gr.Number(value=0, precision=0, minimum=0, label=t("chat.seed"), elem_id="chat-seed")
        conversation = gr.State([])
        # 👍 / 👎 on an answer and ✏️ editing it into a better one are kept as training feedback (core.feedback).
        chatbot = gr.Chatbot(height=420, show_label=False, elem_id="chatbot", editable="all")
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
        with gr.Row():
            save_format = gr.Radio(["json", "markdown"], value="json", label=t("chat.save_format"))
            save_button = gr.Button(t("chat.save"), size="sm", elem_id="chat-save")
            example_button = gr.Button(t("chat.save_example"), size="sm", elem_id="chat-save-example")
        saved_file = gr.File(label=t("chat.saved_file"), interactive=False, height=60, elem_id="chat-saved-file")

    settings_inputs = [model_picker, system_box, temperature, top_p, top_k, repetition, max_new, seed, collection_picker]

    def on_load():
        return (gr.update(choices=_picker_choices(ctx)), gate_note(ctx.capabilities().gguf_chat),
                gr.update(choices=documents_ui.collection_choices(ctx)))

    def on_refresh_click(current: str, current_documents: str):
        return (refreshed(_picker_choices(ctx), current, "default"),
                refreshed(documents_ui.collection_choices(ctx), current_documents, ""))

    def on_model_change(choice_id: str, progress=gr.Progress()):
        try:
            choice = _find(ctx, choice_id)
            started = time.perf_counter()
            inference.open_backend(choice, ctx.workspace, progress=lambda f, m: progress(f, desc=m))
            return f"✅ {choice.label} ready ({time.perf_counter() - started:.1f} s)", chat.memory_text()
        except Exception as error:  # shown beside the picker; the chat keeps working with its history
            return error_text(error), chat.memory_text()

    def on_send(text, history, choice_id, system, temperature, top_p, top_k, repetition, max_new, seed, documents,
                request: gr.Request):
        settings_values = (choice_id, system, temperature, top_p, top_k, repetition, max_new, seed, documents)
        text = text or ""
        try:
            chat.check_input(text)
        except BadInputError as error:
            yield chat_view(history), history, text, error_text(error), gr.update()
            return
        if not text.strip():
            yield chat_view(history), history, "", "", gr.update()
            return
        history = [*history, {"role": "user", "content": text}]
        for shown, line in respond(ctx, history, *settings_values, session=request.session_hash):
            yield chat_view(shown), shown, "", line, gr.update()
        yield gr.update(), gr.update(), gr.update(), gr.update(), chat.memory_text()

    def on_regenerate_click(history, choice_id, system, temperature, top_p, top_k, repetition, max_new, seed,
                            documents, request: gr.Request):
        settings_values = (choice_id, system, temperature, top_p, top_k, repetition, max_new, seed, documents)
        while history and history[-1]["role"] == "assistant":
            history = history[:-1]
        if not history:
            yield chat_view(history), history, "", gr.update()
            return
        for shown, line in respond(ctx, history, *settings_values, session=request.session_hash):
            yield chat_view(shown), shown, line, gr.update()
        yield gr.update(), gr.update(), gr.update(), chat.memory_text()

    def on_edit_click(history):
        kept, question = take_back_last_question(history)
        return chat_view(kept), kept, question if question is not None else gr.update()

    def on_liked(history, choice_id, event: gr.LikeData):
        index = event.index if isinstance(event.index, int) else event.index[0]
        liked = event.liked if isinstance(event.liked, bool) else None
        try:
            feedback.rate(ctx.workspace, history, index, _label(ctx, choice_id), liked=liked)
        except Exception as error:  # shown in the status line
            return error_text(error)
        return (f"{'👍' if liked else '👎' if liked is False else '↩️'} Rating saved; the Data tab's preference "
                "section turns ratings into training data.")

    def on_edited(history, choice_id, event: gr.EditData):
        index = event.index if isinstance(event.index, int) else event.index[0]
        try:
            edited, row = feedback.apply_edit(ctx.workspace, history, index, chat.unmark(event.value),
                                              _label(ctx, choice_id))
        except Exception as error:  # the conversation stays as it was
            return history, history, error_text(error)
        note = "✏️ Better answer saved as a preference pair (your edit over the original)." if row else "✏️ Edited."
        return edited, edited, note

    def on_stop_click(request: gr.Request):
        _stops.setdefault(request.session_hash, threading.Event()).set()

    def on_save_click(history, fmt, choice_id):
        try:
            path = chat.save_conversation(ctx.workspace, history, _find(ctx, choice_id).label, fmt)
            return str(path), f"💾 Saved to {path}"
        except Exception as error:  # shown in the status line
            return None, error_text(error)

    def on_example_click(history):
        try:
            path, added = chat.save_training_example(ctx.workspace, history)
            return (f"➕ Added to {path.name}; the Data tab loads it as a chat dataset." if added
                    else f"ℹ️ This conversation is already in {path.name}.")
        except Exception as error:  # shown in the status line
            return error_text(error)

    ctx.demo.load(on_load, outputs=[model_picker, model_note, collection_picker])
    # Opening the tab lists what was trained or exported since the page loaded, as Refresh does.
    gr.on([refresh_button.click, tab.select], on_refresh_click, [model_picker, collection_picker],
          [model_picker, collection_picker])
    model_picker.change(on_model_change, model_picker, [model_note, memory])
    send_outputs = [chatbot, conversation, message, status, memory]
    send_button.click(on_send, [message, conversation, *settings_inputs], send_outputs)
    message.submit(on_send, [message, conversation, *settings_inputs], send_outputs)
    regenerate_button.click(on_regenerate_click, [conversation, *settings_inputs],
                            [chatbot, conversation, status, memory])
    edit_button.click(on_edit_click, conversation, [chatbot, conversation, message])
    stop_button.click(on_stop_click, queue=False)
    chatbot.like(on_liked, [conversation, model_picker], status)
    chatbot.edit(on_edited, [conversation, model_picker], [chatbot, conversation, status])
    clear_button.click(lambda: ([], [], ""), outputs=[chatbot, conversation, status])
    save_button.click(on_save_click, [conversation, save_format, model_picker], [saved_file, status])
    example_button.click(on_example_click, conversation, status)
    return Focus(model_picker, lambda choice_id: gr.update(choices=_picker_choices(ctx), value=choice_id))


def respond(ctx: AppContext, history: list[dict], choice_id: str, system: str, temperature, top_p, top_k,
            repetition, max_new, seed, documents: str = "", *, session: str):
    """Yields (conversation, status line) while an answer streams; the last status has the speed.

    With `documents` (a collection name) the question is answered from its relevant passages, and the
    answer's message keeps its numbered citations under "citations" (`chat_view` shows them)."""
    stop = _stops.setdefault(session, threading.Event())
    stop.clear()
    try:
        # Seed 0 (the default): a fresh one per answer, so Regenerate gives another (the line names it).
        settings = GenerationSettings(max_new_tokens=int(max_new), temperature=float(temperature),
                                      top_p=float(top_p), top_k=int(top_k), repetition_penalty=float(repetition),
                                      seed=int(seed or 0) or chat.fresh_seed())
        choice = _find(ctx, choice_id)
        note = yield from _queue(ctx, choice, history, stop)
        backend, loaded_s = yield from _status_of(history, chat.open_model(choice, ctx.workspace))
        if documents:
            backend = GroundedBackend(backend, open_collection(ctx.workspace, documents))
        system = (system or "").strip()
        prefix = [{"role": "system", "content": system}] if system else []
        messages, dropped = inference.fit_context(backend, prefix + [_plain(m) for m in history], settings)
        if dropped:
            note += f" · ✂️ the {dropped} oldest messages no longer fit the context window and were left out"
        grounding = backend.ground(messages, settings) if documents else None
    except Exception as error:  # the question stays in the conversation; the reason shows below it
        yield history, error_text(error)
        return
    answer = {"model": choice.label, "loaded_s": loaded_s}
    if grounding is None:
        yield from _stream(backend, messages, settings, history, stop, note, answer)
        return
    note += f" · 📄 {len(grounding.citations)} sources" if grounding.citations else f" · 📄 {grounding.note}"
    yield from _stream(backend.backend, grounding.messages, settings, history, stop, note, answer,
                       citations=[vars(citation) for citation in grounding.citations])


def take_back_last_question(history: list[dict]) -> tuple[list[dict], str | None]:
    """The conversation before the last question, and that question, so it can be edited and resent."""
    for index in range(len(history) - 1, -1, -1):
        if history[index]["role"] == "user":
            return history[:index], history[index]["content"]
    return history, None


def _queue(ctx: AppContext, choice, history: list[dict], stop: threading.Event):
    """On an accelerator, wait behind a heavy job; on a CPU, chat anyway and say it will be slower."""
    job = ctx.jobs.heavy_job()
    if job is None:
        return ""
    if chat.must_wait(ctx.jobs, lambda: ctx.device().kind, choice) is None:
        return f" · ℹ️ '{job.title}' is running on this machine too, so answers are slower"
    for line in chat.wait_for_accelerator(ctx.jobs, stop):
        yield history, line
    return ""


def _status_of(history: list[dict], lines):
    """Passes a core generator's status lines on beside the conversation; returns what it returns."""
    while True:
        try:
            line = next(lines)
        except StopIteration as done:
            return done.value
        yield history, line


def _stream(backend, messages, settings, history, stop, note, answer: dict, citations=None):
    """Streams the answer; the message keeps which model wrote it (`chat_view` marks it when several did)."""
    history = [*history, {"role": "assistant", "content": "", "model": answer["model"]}]
    yield history, "…"
    usage, started, first, shown = {}, time.perf_counter(), None, 0.0
    try:
        for piece in backend.stream(messages, settings, stop=stop, usage=usage):
            first = first or time.perf_counter()
            history = [*history[:-1], {**history[-1], "content": history[-1]["content"] + piece}]
            # Every yield re-renders the whole chat in the browser: at 50+ tokens/s a busy laptop falls
            # behind the stream (and behind the Stop click), so send at most one update per frame budget.
            if time.perf_counter() - shown >= UPDATE_EVERY_S:
                shown = time.perf_counter()
                yield history, "…"
    except Exception as error:  # keep what was generated so far; show why it ended
        yield history, error_text(error)
        return
    tokens, ended = usage.get("completion_tokens", 0), time.perf_counter()
    speed = tokens / (ended - first) if first and ended > first else 0.0
    ttft = f"{(first - started):.2f} s" if first else "–"
    loaded = f"model loaded in {answer['loaded_s']:.1f} s · " if answer["loaded_s"] else ""
    seed = f" · seed {settings.seed}" if settings.temperature > 0 else ""
    stopped = " · ⏹ stopped" if stop.is_set() else ""  # set by the Stop button only, never by the backends
    if citations:
        history = [*history[:-1], {**history[-1], "citations": citations}]
    yield history, f"{loaded}first token {ttft} · {speed:.1f} tokens/s · {tokens} tokens{seed}{stopped}{note}"


def chat_view(history: list[dict]) -> list[dict]:
    """What the Chatbot shows: the conversation, each grounded answer followed by its numbered citations
    as closed panels (source, page and heading in the title; the passage inside). Once more than one
    model has answered, each answer is headed by the model that wrote it."""
    shown = []
    several = len({m.get("model") for m in history if m["role"] == "assistant" and m.get("model")}) > 1
    for message in history:
        shown.append(chat.mark(_plain(message), message.get("model")) if several else _plain(message))
        for citation in message.get("citations", []):
            shown.append({"role": "assistant", "content": citation["text"],
                          "metadata": {"title": f"📄 [{citation['number']}] {citation['where']}",
                                       "log": citation["id"], "status": "done"}})
    return shown


def _plain(message: dict) -> dict:
    return {"role": message["role"], "content": message["content"]}


def _picker_choices(ctx: AppContext) -> list[tuple[str, str]]:
    try:
        return [(choice.label, choice.id) for choice in inference.list_choices(ctx.workspace)]
    except Exception:  # e.g. the packaged default model missing: the picker still opens, errors show on use
        return [(inference.DEFAULT_GGUF_LABEL, "default")]


def _label(ctx: AppContext, choice_id: str) -> str:
    try:
        return _find(ctx, choice_id).label
    except BadInputError:  # the model went away since it answered: its id still says which it was
        return choice_id


def _find(ctx: AppContext, choice_id: str):
    for choice in inference.list_choices(ctx.workspace):
        if choice.id == choice_id:
            return choice
    raise BadInputError(f"The model '{choice_id}' is no longer available.", "Click 'Refresh list' and pick again.")
