"""Train tab: Fine-tune a model on a saved dataset."""

from __future__ import annotations

import gradio as gr

from tabs.common import AppContext, t

STRINGS = {
    "en": {"train.tab": "🏋️ Train", "train.header": '## Train\nLoRA (and QLoRA on CUDA) with TRL and PEFT, with presets, live progress, stop and resume.'},
    "zh": {"train.tab": "🏋️ 训练", "train.header": '## 训练\n基于 TRL 与 PEFT 的 LoRA（CUDA 上支持 QLoRA），含预设、实时进度、停止与续训。'},
}


def build(ctx: AppContext) -> None:
    with gr.Tab(t("train.tab"), id="train"):
        gr.Markdown(t("train.header"))
