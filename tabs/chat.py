"""Chat tab: streaming multi-turn chat with the default model's packaged GGUF through llama.cpp."""

from __future__ import annotations

import time

import gradio as gr

from core import inference, models
from tabs.common import AppContext, error_text, gated, t

STRINGS = {
    "en": {
        "chat.tab": "💬 Chat",
        "chat.header": "## Chat\nTalk to the base model, a fine-tuned adapter or an exported GGUF.",
        "chat.model": "Model",
        "chat.input": "Message",
        "chat.placeholder": "Ask something…",
        "chat.send": "Send",
        "chat.stop": "Stop",
        "chat.clear": "Clear",
    },
    "zh": {
        "chat.tab": "💬 对话",
        "chat.header": "## 对话\n与基础模型、微调后的适配器或导出的 GGUF 对话。",
        "chat.model": "模型",
        "chat.input": "消息",
        "chat.placeholder": "问点什么…",
        "chat.send": "发送",
        "chat.stop": "停止",
        "chat.clear": "清空",
    },
}
DEFAULT_CHOICE = "Default model · SmolLM2-135M-Instruct (GGUF, llama.cpp)"


def build(ctx: AppContext) -> None:
    with gr.Tab(t("chat.tab"), id="chat"):
        gr.Markdown(t("chat.header"))
        model_picker = gr.Dropdown([DEFAULT_CHOICE], value=DEFAULT_CHOICE, label=t("chat.model"))
        gate_note = gr.Markdown()
        chatbot = gr.Chatbot(height=420, elem_id="chatbot")
        with gr.Row():
            message = gr.Textbox(label=t("chat.input"), placeholder=t("chat.placeholder"), scale=5,
                                 elem_id="chat-input")
            send_button = gr.Button(t("chat.send"), variant="primary", scale=1, elem_id="chat-send")
            stop_button = gr.Button(t("chat.stop"), scale=1, elem_id="chat-stop")
            clear_button = gr.Button(t("chat.clear"), scale=1)
        status = gr.Markdown(elem_id="chat-status")

    def on_load():
        picker_update, note = gated(ctx.capabilities().gguf_chat)
        return picker_update, note

    def on_send(text: str, history: list[dict]):
        history = list(history or [])
        if not text.strip():
            yield history, "", ""
            return
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        yield history, "", "…"
        try:
            backend = inference.gguf_backend(models.packaged_gguf())
            started, first, pieces = time.perf_counter(), None, 0
            for piece in backend.stream(_plain(history[:-1]), inference.GenerationSettings()):
                first = first or time.perf_counter()
                pieces += 1
                history[-1]["content"] += piece
                yield history, "", ""
            elapsed = time.perf_counter() - (first or started)
            yield history, "", (f"first token {((first or started) - started):.2f} s · "
                                f"{pieces / elapsed if elapsed else 0:.1f} tokens/s")
        except Exception as error:  # shown in the tab; the chat history is kept
            yield history, "", error_text(error)

    ctx.demo.load(on_load, outputs=[model_picker, gate_note])
    send_events = [
        send_button.click(on_send, [message, chatbot], [chatbot, message, status]),
        message.submit(on_send, [message, chatbot], [chatbot, message, status]),
    ]
    stop_button.click(None, cancels=send_events)
    clear_button.click(lambda: ([], ""), outputs=[chatbot, status])


def _plain(history: list[dict]) -> list[dict]:
    """Chatbot messages carry extra keys (metadata, options); backends get role and content only."""
    return [{"role": item["role"], "content": item["content"]} for item in history
            if isinstance(item.get("content"), str)]
