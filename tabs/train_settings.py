"""The Train tab's settings form: one widget per `TrainSettings` field, grouped in labelled sections.

Each widget's default is the field's default and its help (`info=`) is the field's docstring, the same
text `config.yaml` carries as a comment, so the form, the file and the code say one thing. Handlers get
the widgets' values in `FIELDS` order (the dataclass's order), whatever section a widget sits in;
`settings_from` turns them back into `TrainSettings`.
"""

from __future__ import annotations

import dataclasses

import gradio as gr

from core.train.config_file import field_notes
from core.train.settings import BATCHING, OPTIMIZERS, PRECISIONS, SCHEDULERS, TrainSettings
from tabs import train_preference
from tabs.common import AppContext, t

DEFAULTS = TrainSettings()
FIELDS = [f.name for f in dataclasses.fields(TrainSettings)
          if f.name not in ("model", "dataset", *train_preference.METHOD_FIELDS)]
CHOICES = {"batching": BATCHING, "precision": PRECISIONS, "scheduler": SCHEDULERS, "optimizer": OPTIMIZERS}
SECTIONS = {  # section label key -> its fields, top to bottom
    "train.s.method": ("load_in_4bit", "precision", "optimizer", "gradient_checkpointing", "power_watts"),
    "train.s.lora": ("lora_rank", "lora_alpha", "lora_dropout", "target_modules"),
    "train.s.optimisation": ("learning_rate", "scheduler", "warmup_ratio", "batch_size", "grad_accum"),
    "train.s.data": ("max_length", "batching", "assistant_only_loss", "eval_share", "seed"),
    "train.s.schedule": ("epochs", "max_steps", "eval_steps", "save_steps", "logging_steps", "save_total_limit"),
}
LABELS_EN = {
    "lora_rank": "LoRA rank", "lora_alpha": "LoRA alpha", "lora_dropout": "LoRA dropout",
    "target_modules": "Target modules", "load_in_4bit": "4-bit QLoRA (CUDA)", "max_length": "Max sequence length",
    "epochs": "Epochs", "max_steps": "Max steps (0 = use epochs)", "learning_rate": "Learning rate",
    "scheduler": "Scheduler", "warmup_ratio": "Warmup share", "batch_size": "Batch size",
    "grad_accum": "Gradient accumulation", "gradient_checkpointing": "Gradient checkpointing",
    "batching": "Batching", "assistant_only_loss": "Assistant-only loss", "eval_share": "Eval share",
    "eval_steps": "Eval every N steps", "save_steps": "Save every N steps", "logging_steps": "Log every N steps",
    "save_total_limit": "Checkpoints kept", "seed": "Seed", "precision": "Precision", "optimizer": "Optimizer",
    "power_watts": "Stated power, W (0 = device default)",
}
LABELS_ZH = {
    "lora_rank": "LoRA 秩", "lora_alpha": "LoRA alpha", "lora_dropout": "LoRA dropout",
    "target_modules": "目标模块", "load_in_4bit": "4 位 QLoRA（CUDA）", "max_length": "最大序列长度",
    "epochs": "训练轮数", "max_steps": "最大步数（0 = 按轮数）", "learning_rate": "学习率",
    "scheduler": "学习率调度", "warmup_ratio": "预热比例", "batch_size": "批大小",
    "grad_accum": "梯度累积", "gradient_checkpointing": "梯度检查点",
    "batching": "组批方式", "assistant_only_loss": "只对助手回复计算损失", "eval_share": "评估集比例",
    "eval_steps": "每 N 步评估", "save_steps": "每 N 步保存", "logging_steps": "每 N 步记录",
    "save_total_limit": "保留的检查点数", "seed": "随机种子", "precision": "精度", "optimizer": "优化器",
    "power_watts": "设定功率，瓦（0 = 设备默认）",
}
SECTION_LABELS = {
    "en": {"train.s.method": "Method and hardware", "train.s.lora": "LoRA adapter",
           "train.s.optimisation": "Optimisation", "train.s.data": "Lengths and data",
           "train.s.schedule": "Schedule and saving"},
    "zh": {"train.s.method": "方法与硬件", "train.s.lora": "LoRA 适配器", "train.s.optimisation": "优化",
           "train.s.data": "长度与数据", "train.s.schedule": "进度与保存"},
}
STRINGS = {lang: {**SECTION_LABELS[lang], **{f"train.f.{name}": label for name, label in labels.items()}}
           for lang, labels in (("en", LABELS_EN), ("zh", LABELS_ZH))}


def build_settings() -> list:
    """The settings accordion; returns its widgets in `FIELDS` order."""
    widgets = {}
    with gr.Accordion(t("train.settings"), open=False, elem_id="train-settings"):
        for section, names in SECTIONS.items():
            with gr.Accordion(t(section), open=True), gr.Row():
                widgets.update({name: _setting_widget(name) for name in names})
    return [widgets[name] for name in FIELDS]


def _setting_widget(name: str):
    value, label, info = getattr(DEFAULTS, name), t(f"train.f.{name}"), field_notes()[name]
    if name in CHOICES:
        return gr.Dropdown(list(CHOICES[name]), value=value, label=label, info=info, min_width=160)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=label, info=info, min_width=160)
    if isinstance(value, int):
        return gr.Number(value, precision=0, label=label, info=info, min_width=160)
    if isinstance(value, float):
        return gr.Number(value, label=label, info=info, min_width=160)
    return gr.Textbox(value, label=label, info=info, min_width=160)


def typed(name: str, value):
    """Gradio hands numbers back as floats (or None when a box is cleared): restore the field's type."""
    default = getattr(DEFAULTS, name)
    if value is None or value == "":
        return default
    if isinstance(default, bool):
        return bool(value)
    return type(default)(value)


def settings_from(ctx: AppContext, model, dataset, method, beta, start_from, *values) -> TrainSettings:
    """The form's values (model, dataset, method row, then the settings in `FIELDS` order) as settings."""
    numbers = {name: typed(name, value) for name, value in zip(FIELDS, values)}
    return TrainSettings(model=(model or "default").strip(), dataset=dataset_path(ctx, dataset),
                         method=method or "sft", beta=float(beta or DEFAULTS.beta),
                         start_from=(start_from or "").strip(), **numbers)


def dataset_path(ctx: AppContext, name: str | None) -> str:
    return str(ctx.workspace.named(ctx.workspace.datasets, name, "dataset")) if (name or "").strip() else ""
