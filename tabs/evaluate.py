"""Evaluate tab: Compare models blindly and measure them."""

from __future__ import annotations

import gradio as gr

from tabs.common import AppContext, t

STRINGS = {
    "en": {"evaluate.tab": "⚖️ Evaluate", "evaluate.header": '## Evaluate\nBlind side-by-side rating with a leaderboard, plus automatic metrics.'},
    "zh": {"evaluate.tab": "⚖️ 评测", "evaluate.header": '## 评测\n盲评并排对比与排行榜，以及自动指标。'},
}


def build(ctx: AppContext) -> None:
    with gr.Tab(t("evaluate.tab"), id="evaluate"):
        gr.Markdown(t("evaluate.header"))
