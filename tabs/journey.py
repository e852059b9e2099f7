"""The guided first run panel: one button that walks the whole journey on the default model.

It starts `core.journey` as a job and polls it. When the journey reaches a new step, the panel opens that
step's tab and points the tab at the journey's own run or model (through each tab's `Focus`), so the
person watches every stage happen where they would do it by hand. Training and export are ordinary jobs,
so Stop here stops them, and a closed browser loses nothing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from core import journey
from core.jobs import State
from tabs.common import AppContext, Focus, error_text, t

STRINGS = {
    "en": {
        "journey.title": "🧭 New here? Try the whole journey",
        "journey.intro": (
            "One click runs every stage on the embedded default model: prepare the shipped sample data, "
            "fine-tune on this machine (its first steps say how many minutes it will take here), "
            "export Q8_0 and F16 GGUFs and keep the one the round-trip check recommends, "
            "then open Chat on it and an Arena of the base model against the fine-tune. The samples teach "
            "the assistant its name, **Kestrel**: ask it *What is your name?* before and after. Each step "
            "opens its own tab as it happens; steps already done are skipped."),
        "journey.start": "Try the whole journey on the default model",
        "journey.stop": "Stop the journey",
        "journey.away": "You may close this page: the journey keeps running on this machine, and reopening "
                        "the page shows where it is.",
    },
    "zh": {
        "journey.title": "🧭 第一次使用？体验完整流程",
        "journey.intro": (
            "一键在内置默认模型上走完所有阶段：准备自带的示例数据，在本机微调（根据最初几步的速度告诉你在本机大约需要几分钟），导出 Q8_0 和 F16 GGUF，按往返检查的建议选用其一，"
            "然后在对话页打开它，并在竞技场中让基础模型与微调模型盲评对战。示例数据教会助手它的名字 **Kestrel**："
            "微调前后都问问它“你叫什么名字？”。每一步都会在对应的标签页中进行；已完成的步骤会被跳过。"),
        "journey.start": "在默认模型上体验完整流程",
        "journey.stop": "停止流程",
        "journey.away": "你可以关闭此页面：流程会在本机继续运行，重新打开页面即可看到进度。",
    },
}
TAB_OF_STEP = {"data": "data", "train": "train", "export": "export", "chat": "chat", "arena": "evaluate"}
STEP_OF_TAB = {tab: step for step, tab in TAB_OF_STEP.items()}
MARKS = {"done": "✅", "skipped": "⏭️", "running": "⏳"}


@dataclass(frozen=True)
class Panel:
    accordion: Any
    start_button: Any
    stop_button: Any
    status: Any
    timer: Any
    shown_step: Any
    """gr.State: the step whose tab was last opened, so each tab opens once, not on every poll."""
    progress: Any = None
    """The journey's progress bar, what it is doing and the time left (HTML's <progress>); None elsewhere."""


def build(ctx: AppContext) -> Panel:
    """The panel's widgets, laid out above the tabs and open on first start; `wire` connects them."""
    with gr.Accordion(t("journey.title"), open=first_start(ctx), elem_id="journey") as accordion:
        gr.Markdown(t("journey.intro"))
        with gr.Row():
            start_button = gr.Button(t("journey.start"), variant="primary", elem_id="journey-start")
            # Shown only while the journey runs: a red Stop with nothing to stop reads as an alarm.
            stop_button = gr.Button(t("journey.stop"), variant="stop", elem_id="journey-stop", visible=False)
        progress = gr.HTML(elem_id="journey-progress")
        gr.Markdown(t("journey.away"))
        status = gr.Markdown(elem_id="journey-status")
    return Panel(accordion, start_button, stop_button, status, gr.Timer(2.0, active=False), gr.State(""), progress)


def first_start(ctx: AppContext) -> bool:
    """No run and no finished journey yet: the panel opens by itself; afterwards it stays folded (one line
    above the tabs) until asked for."""
    return not any(ctx.workspace.runs.glob("*/job.json")) and not journey.completed(ctx.workspace, ctx.jobs)


def wire(ctx: AppContext, panel: Panel, tabs: gr.Tabs, focus: dict[str, Focus | None]) -> None:
    """Connect the panel once the tabs exist: `focus` maps a tab id to that tab's Focus."""
    followed = [(tab, focus[tab]) for tab in TAB_OF_STEP.values() if focus.get(tab)]

    def on_start_clicked():
        try:
            ctx.require_unlocked("The guided first run")
            journey.start(ctx.workspace, ctx.jobs)
        except Exception as error:  # already running, or the app is exposed without auth
            return error_text(error), gr.Timer(active=False), "", "", gr.Button()
        return checklist(ctx), gr.Timer(active=True), "", progress_bar(ctx), gr.Button(visible=True)

    def on_stop_clicked():
        ctx.jobs.request_stop(journey.folder(ctx.workspace))
        return "■ Stopping: the running step saves its work first…"

    def on_timer_tick(shown: str):
        job = ctx.jobs.snapshot(journey.folder(ctx.workspace))
        step, _ = reached(job)
        running = not job.state.finished
        if not step or step == shown:
            return checklist(ctx), progress_bar(ctx), gr.Timer(active=running), gr.Button(visible=running), shown, \
                gr.Tabs(), *[gr.update() for _ in followed]
        # Every tab whose step has something to show is pointed at it, not only the newest step's: two
        # instant steps (Chat, Arena) often finish within one poll, and Chat must still end on the GGUF.
        return (checklist(ctx), progress_bar(ctx), gr.Timer(active=running), gr.Button(visible=running), step,
                gr.Tabs(selected=TAB_OF_STEP[step]), *aims(job, followed))

    def on_page_load():
        job = ctx.jobs.snapshot(journey.folder(ctx.workspace))
        started = (journey.folder(ctx.workspace) / "status.json").exists()
        # After a finished journey, a fresh page opens Chat's picker on the GGUF it made, not the base.
        chat = made_so_far(job).get("chat") if job.state is State.SUCCEEDED else None
        running = started and not job.state.finished
        return ((checklist(ctx) if started else ""), (progress_bar(ctx) if started else ""),
                gr.Timer(active=running), gr.Button(visible=running), gr.Accordion(open=first_start(ctx) or running),
                *[target.point_at(chat) if tab == "chat" and chat else gr.update() for tab, target in followed])

    panel.start_button.click(on_start_clicked, outputs=[panel.status, panel.timer, panel.shown_step, panel.progress,
                                                        panel.stop_button])
    panel.stop_button.click(on_stop_clicked, outputs=[panel.status])
    panel.timer.tick(on_timer_tick, inputs=[panel.shown_step],
                     outputs=[panel.status, panel.progress, panel.timer, panel.stop_button, panel.shown_step, tabs,
                              *[target.widget for _, target in followed]], show_progress="hidden")
    ctx.demo.load(on_page_load, outputs=[panel.status, panel.progress, panel.timer, panel.stop_button, panel.accordion,
                                         *[target.widget for _, target in followed]])


def aims(job, followed: list[tuple[str, Focus]]) -> list:
    """For each followed tab, where to point it: what its step made so far, or no change."""
    made = made_so_far(job)
    return [target.point_at(made[step]) if (step := STEP_OF_TAB[tab]) in made else gr.update()
            for tab, target in followed]


def reached(job) -> tuple[str, Any]:
    """The newest step the journey has reached and what its tab should show; ("", None) before any.

    Chat and Arena know their model only once their (instant) step is done, so until then the previous
    step stays shown."""
    step, seen = "", {}
    for event in job.events():
        seen.update(event)
        if event["step"] == "data" or _value(event["step"], seen) is not None:
            step = event["step"]
    return (step, made_so_far(job).get(step)) if step else ("", None)


def made_so_far(job) -> dict[str, Any]:
    """What each step has made so far, by step: the dataset, the run, the chat model, the contenders."""
    made: dict[str, Any] = {}
    seen: dict[str, Any] = {}
    for event in job.events():
        seen.update(event)
        value = _value(event["step"], seen)
        if value is not None:
            made[event["step"]] = value
    return made


def _value(step: str, seen: dict) -> Any:
    return {"train": journey.RUN_NAME, "export": journey.RUN_NAME, "chat": seen.get("chat_model"),
            "arena": seen.get("contenders"), "data": seen.get("dataset")}[step]


def progress_bar(ctx: AppContext) -> str:
    """The journey's progress bar with what it is doing and, while known, the time its step has left."""
    job = ctx.jobs.snapshot(journey.folder(ctx.workspace))
    fraction, text, _ = journey.where(ctx.workspace, ctx.jobs, job)
    return (f'<progress value="{fraction:.3f}" max="1" style="width:100%"></progress>'
            f"<div>{fraction:.0%} · {html.escape(text)}</div>")


def checklist(ctx: AppContext) -> str:
    job = ctx.jobs.snapshot(journey.folder(ctx.workspace))
    states = {event["step"]: event["state"] for event in job.events()}
    lines = [f"{MARKS.get(states.get(step, ''), '◻️')} {index + 1}. {journey.TITLES[step]}"
             for index, step in enumerate(journey.STEPS)]
    if eta := journey.estimate(job).get("eta_s"):  # projected from the first steps, kept beside the step
        lines[1] += f" · about {journey.minutes(eta)} on this machine"
    if job.state is State.FAILED:
        lines.append(f"❌ {job.error}")
    elif job.state.finished:
        lines.append(f"**{job.message}**")
    return "\n\n".join(lines)
