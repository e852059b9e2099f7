"""The Train tab's DPO / KTO parts: the method row, datasets of the right kind, the pre-flight card and
sample of a preference run, the reward-margin plot and the before/after check. Helpers only; `tabs.train`
lays them out and wires them, so its SFT path stays as it was.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.data.preference_versions import is_preference_version
from core.train import data, runs
from core.train.settings import METHODS, TrainSettings
from tabs.common import AppContext, t

DEFAULTS = TrainSettings()
METHOD_FIELDS = ("method", "beta", "start_from")
PREFERENCE_CURVES = ("reward_margin", "preference_accuracy", "eval_reward_margin", "eval_preference_accuracy")
STRINGS = {
    "en": {"train.method": "Method: SFT learns answers; DPO learns from votes (pairs); KTO from thumbs",
           "train.beta": "Beta (DPO / KTO): lower moves further from the start",
           "train.start_from": "Start from run (DPO / KTO; its model is the reference)",
           "train.preference_plot": "Reward margin and preference accuracy (held-out pairs: eval_…)"},
    "zh": {"train.method": "方法：SFT 学习回答；DPO 从投票（成对）学习；KTO 从点赞/点踩学习",
           "train.beta": "Beta（DPO / KTO）：越小离起点越远",
           "train.start_from": "从某次运行继续（DPO / KTO；其模型即参考模型）",
           "train.preference_plot": "奖励差与偏好准确率（留出偏好对：eval_…）"},
}


def build_method_row():
    """(method radio, beta box, start-from dropdown), laid out in one row."""
    with gr.Row():
        method = gr.Radio(list(METHODS), value=DEFAULTS.method, label=t("train.method"), elem_id="train-method")
        beta = gr.Number(DEFAULTS.beta, minimum=0.001, label=t("train.beta"), elem_id="train-beta")
        start_from = gr.Dropdown([""], value="", allow_custom_value=True, label=t("train.start_from"),
                                 elem_id="train-start-from")
    return method, beta, start_from


def dataset_choices(ctx: AppContext, method: str) -> list[str]:
    """Conversation versions for SFT, preference versions for DPO and KTO, newest first."""
    wanted = method != "sft"
    return [folder.name for folder in data.list_versions(ctx.workspace) if is_preference_version(folder) == wanted]


def start_choices(ctx: AppContext) -> list[str]:
    """"" (a new adapter), then every run with a saved adapter, newest first."""
    return ["", *[run.name for run in runs.list_runs(ctx.workspace, ctx.jobs)
                  if (run.path / runs.ADAPTER_DIR / "adapter_config.json").is_file()]]


def on_method_change(ctx: AppContext, method: str):
    """Fresh dataset and start-from choices for the method."""
    versions = dataset_choices(ctx, method)
    starts = start_choices(ctx)
    return (gr.update(choices=versions, value=versions[0] if versions else None),
            gr.update(choices=starts, value=starts[1] if method != "sft" and len(starts) > 1 else ""))


def check(settings: TrainSettings, ctx: AppContext):
    """The pre-flight card and a sample pair with its trained answer tokens highlighted (the lint runs)."""
    from transformers import AutoTokenizer

    from core import models
    from core.masks import highlight_pair, lint_pairs
    from core.train import preference_data

    plan = preference_data.estimate(settings, ctx.workspace, ctx.device())
    tokenizer = AutoTokenizer.from_pretrained(models.resolve(settings.model, ctx.workspace))
    rows, _, _ = preference_data.load_rows(settings)
    lint_pairs(tokenizer, [(row["prompt"], (row.get("chosen") or row.get("completion"))[0]["content"])
                           for row in rows[:32]])
    first = rows[0]
    sample = highlight_pair(tokenizer, first["prompt"], (first.get("chosen") or first["completion"])[0]["content"],
                            first["rejected"][0]["content"] if "rejected" in first else None)
    return plan, preference_data.card(plan, settings), sample


def curve_rows(events: list[dict]) -> list[dict]:
    return [{"step": e["step"], "value": e[m], "metric": m} for e in events for m in PREFERENCE_CURVES if m in e]


def check_text(run_dir: Path) -> str:
    """The automatic before/after check of a finished preference run, as Markdown lines."""
    from core.evaluate.preference_check import check_text as lines
    from core.train.preference import read_check

    found = read_check(run_dir)
    return "\n\n".join(f"📏 {line}" for line in lines(found)) if found else ""
