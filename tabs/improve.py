"""The second, optional card under the guided first run: "improve from your votes".

It stays folded and its button greyed out, with the count, until the arena holds `core.improve.MIN_PAIRS`
A-or-B votes on one fine-tune; then one click turns the votes into pairs, trains DPO from that fine-tune
and opens the arena of the two. A thin UI over `core.improve`, polled like the journey panel.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from core import improve
from tabs.common import AppContext, Focus, error_text, t
from tabs.journey import Panel

STRINGS = {
    "en": {"improve.title": "📈 Improve from your votes (optional)",
           "improve.intro": (f"After you have rated a fine-tune in the arena, its votes can train it further: every "
                             f"A-or-B vote is a preference pair, and DPO moves the model toward the answers you "
                             f"preferred, starting from that fine-tune. The button wakes up at "
                             f"**{improve.MIN_PAIRS} pairs**: fewer leave one or two pairs to hold out, too few "
                             f"to tell whether the run helped. Then vote again: the leaderboard says whether it "
                             f"did, with its confidence."),
           "improve.start": "Improve from your votes", "improve.stop": "Stop"},
    "zh": {"improve.title": "📈 用你的投票继续改进（可选）",
           "improve.intro": (f"在竞技场里评过一个微调模型后，这些投票可以继续训练它：每次 A 或 B 的投票都是一个偏好对，"
                             f"DPO 会从该微调模型出发，让模型更接近你偏好的回答。满 **{improve.MIN_PAIRS} 个偏好对** "
                             f"后按钮才可用：更少的话只能留出一两个偏好对，无法判断训练是否有帮助。之后再投票，排行榜会"
                             f"告诉你是否有帮助以及把握有多大。"),
           "improve.start": "用你的投票继续改进", "improve.stop": "停止"},
}
TAB_OF_STEP = {"preferences": "data", "train": "train", "arena": "evaluate"}


def build(ctx: AppContext) -> Panel:
    """The card's widgets, in the journey panel's shape; `wire` connects them once the tabs exist."""
    with gr.Accordion(t("improve.title"), open=False, elem_id="improve") as accordion:
        gr.Markdown(t("improve.intro"))
        with gr.Row():
            start_button = gr.Button(t("improve.start"), variant="primary", interactive=False, elem_id="improve-start")
            stop_button = gr.Button(t("improve.stop"), variant="stop", elem_id="improve-stop")
        status = gr.Markdown(elem_id="improve-status")
    return Panel(accordion, start_button, stop_button, status, gr.Timer(2.0, active=False), gr.State(""))


def readiness(ctx: AppContext) -> tuple[str, bool]:
    found = improve.candidate(ctx.workspace)
    if not found.run:
        return "No A-or-B vote on a fine-tune yet.", False
    mark = "✅" if found.ready else "⏳"
    return f"{mark} {found.pairs} of {improve.MIN_PAIRS} pairs on run **{found.run}**.", found.ready


def wire(ctx: AppContext, card: Panel, tabs: gr.Tabs, focus: dict[str, Focus | None]) -> None:
    followed = [(tab, focus[tab]) for tab in ("train", "evaluate") if focus.get(tab)]

    def view(shown: str):
        job = ctx.jobs.snapshot(improve.folder(ctx.workspace))
        started = (improve.folder(ctx.workspace) / "status.json").exists()
        text, ready = readiness(ctx)
        running = started and not job.state.finished
        lines = [text] + ([_checklist(job)] if started else [])
        step, value = _reached(job)
        moved = step and step != shown
        aims = [target.point_at(value) if moved and tab == TAB_OF_STEP[step] and value else gr.update()
                for tab, target in followed]
        return ("\n\n".join(lines), gr.update(interactive=ready and not running and not ctx.locked_reason),
                gr.Timer(active=running), step or shown,
                gr.Tabs(selected=TAB_OF_STEP[step]) if moved else gr.Tabs(), *aims)

    def on_start_clicked(shown: str):
        try:
            ctx.require_unlocked("Improving from votes")
            improve.start(ctx.workspace, ctx.jobs)
        except Exception as error:  # not enough pairs, already running, or locked
            return error_text(error), gr.update(), gr.Timer(active=False), shown, gr.Tabs(), \
                *[gr.update() for _ in followed]
        return view("")

    outputs = [card.status, card.start_button, card.timer, card.shown_step, tabs,
               *[target.widget for _, target in followed]]
    card.start_button.click(on_start_clicked, card.shown_step, outputs)
    card.stop_button.click(lambda: ctx.jobs.request_stop(improve.folder(ctx.workspace)) or "■ Stopping…",
                           outputs=card.status)
    card.timer.tick(view, card.shown_step, outputs, show_progress="hidden")
    card.accordion.expand(view, card.shown_step, outputs)  # votes cast since the page loaded count on opening
    ctx.demo.load(view, card.shown_step, outputs)


def _reached(job) -> tuple[str, Any]:
    step, value, made = "", None, {}
    for event in job.events():
        made.update(event)
        step = event["step"]
        value = {"preferences": None, "train": made.get("run"), "arena": made.get("contenders")}[step]
    return step, value


def _checklist(job) -> str:
    states = {event["step"]: event["state"] for event in job.events()}
    marks = {"done": "✅", "running": "⏳"}
    lines = [f"{marks.get(states.get(step, ''), '◻️')} {number}. {improve.TITLES[step]}"
             for number, step in enumerate(improve.STEPS, start=1)]
    if job.error:
        lines.append(f"❌ {job.error}")
    elif job.state.finished:
        lines.append(f"**{job.message}**")
    return "\n\n".join(lines)
