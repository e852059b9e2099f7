"""Export tab: Package a run for your laptop or the Hub."""

from __future__ import annotations

import gradio as gr

from tabs.common import AppContext, t

STRINGS = {
    "en": {"export.tab": "📦 Export", "export.header": '## Export\nAdapter, merged model, GGUF for llama.cpp, Hub pushes and a chat-demo Space.'},
    "zh": {"export.tab": "📦 导出", "export.header": '## 导出\n适配器、合并模型、llama.cpp 用的 GGUF、推送到 Hub，以及聊天演示 Space。'},
}


def build(ctx: AppContext) -> None:
    with gr.Tab(t("export.tab"), id="export"):
        gr.Markdown(t("export.header"))
