"""Data tab: Prepare the data that the Train tab learns from."""

from __future__ import annotations

import gradio as gr

from tabs.common import AppContext, t

STRINGS = {
    "en": {"data.tab": "📚 Data", "data.header": '## Data\nLoad Alpaca, ShareGPT, UltraChat or OpenAI-messages files, then clean, dedupe, split and save one dataset.'},
    "zh": {"data.tab": "📚 数据", "data.header": '## 数据\n加载 Alpaca、ShareGPT、UltraChat 或 OpenAI messages 文件，清洗、去重、划分并保存为一个数据集。'},
}


def build(ctx: AppContext) -> None:
    with gr.Tab(t("data.tab"), id="data"):
        gr.Markdown(t("data.header"))
