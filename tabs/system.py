"""The system panel: device, memory in use, free disk and library versions, refreshed live."""

from __future__ import annotations

import gradio as gr

from core.devices import system_snapshot
from tabs.common import AppContext, t

STRINGS = {
    "en": {"system.title": "System", "system.refresh": "Refresh"},
    "zh": {"system.title": "系统", "system.refresh": "刷新"},
}
REFRESH_S = 5.0


def build(ctx: AppContext) -> None:
    with gr.Accordion(t("system.title"), open=False):
        table = gr.Dataframe(headers=["", ""], column_count=2, interactive=False, show_label=False,
                             elem_id="system-table")
        timer = gr.Timer(REFRESH_S, active=False)

    def on_refresh():
        rows = system_snapshot(ctx.device(), ctx.workspace.root)
        return [[key, value] for key, value in rows.items()], gr.Timer(active=True)

    ctx.demo.load(on_refresh, outputs=[table, timer])
    timer.tick(on_refresh, outputs=[table, timer], show_progress="hidden")
