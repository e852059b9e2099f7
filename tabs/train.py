"""Train tab: pick a preset, model and dataset, check the pre-flight card, then start, stop and resume runs.

A thin UI over `core.train`: runs are jobs (`core.train.job:run`) in run folders, so they survive a
closed tab; the tab polls the selected run with a `gr.Timer` and re-attaches to the newest running one
on page load. This module lays the sections out and wires them; each section's widgets and handlers live
in their own module: the settings form (`train_settings`), pre-flight check and probe (`train_preflight`),
Start / Stop / Resume and the live view (`train_runs`), DPO / KTO parts (`train_preference`). Handlers
there take the `AppContext` first and keep their names, which are their API names. Here: presets, the
pickers' refresh, the compare view and the multi-GPU panel that writes an `accelerate launch` config.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from core import atomic
from core.train import launch, runs
from core.train.settings import CPU_PRESET, PRESETS, preset_gate, preset_settings
from tabs import train_preference, train_preflight, train_runs, train_settings
from tabs.common import AppContext, Focus, error_text, gate_note, t
from tabs.messages import locale_of, translated
from tabs.train_preflight import on_check_click, on_probe_click, on_probe_tick
from tabs.train_runs import on_poll_tick, on_queue_click, on_resume_click, on_start_click, on_stop_click
from tabs.train_settings import FIELDS, settings_from

STRINGS = {
    "en": {
        "train.tab": "🏋️ Train",
        "train.header": "## Train\nLoRA (and QLoRA on CUDA) with TRL and PEFT, with presets, live progress, stop and resume.",
        "train.preset": "Preset", "train.preset_unavailable": "Not available on this machine",
        "train.model": "Base model (\"default\", a folder or a Hub id)",
        "train.dataset": "Dataset version", "train.refresh": "↻ Refresh", "train.settings": "Settings",
        "train.preflight": "Pre-flight", "train.check": "Check", "train.probe": "Probe speed (a few real steps)",
        "train.price": "Price per kWh", "train.currency": "Currency", "train.mask": "Sample: trained tokens highlighted",
        "train.start": "▶ Start", "train.stop": "■ Stop", "train.resume": "⟳ Resume", "train.run": "Run",
        "train.steps": "Step", "train.progress": "Progress", "train.loss": "Loss and eval loss",
        "train.lr": "Learning rate", "train.log": "Last log lines", "train.headless": "Same run without the UI",
        "train.compare": "Compare runs", "train.compare_runs": "Runs to compare", "train.compare_go": "Compare",
        "train.diff": "Settings that differ", "train.metrics": "Final metrics",
        "train.queue": "Same recipe, several datasets", "train.queue_datasets": "Datasets (one run each)",
        "train.queue_go": "Queue runs", "train.multi_gpu": "Several GPUs (accelerate launch)",
        "train.strategy": "Strategy", "train.gpus": "GPUs", "train.generate": "Write config",
        "train.accelerate_config": "accelerate config", "train.accelerate_command": "Command",
        "train.raw_log": "Raw log (every line the run printed)",
        **train_settings.STRINGS["en"],
        **train_preference.STRINGS["en"],
    },
    "zh": {
        "train.tab": "🏋️ 训练",
        "train.header": "## 训练\n基于 TRL 与 PEFT 的 LoRA（CUDA 上支持 QLoRA），含预设、实时进度、停止与续训。",
        "train.preset": "预设", "train.preset_unavailable": "本机无法使用",
        "train.model": "基础模型（\"default\"、文件夹或 Hub ID）",
        "train.dataset": "数据集版本", "train.refresh": "↻ 刷新", "train.settings": "设置",
        "train.preflight": "起飞前检查", "train.check": "检查", "train.probe": "测速（真实运行几步）",
        "train.price": "每千瓦时电价", "train.currency": "货币", "train.mask": "样例：高亮部分为参与训练的词元",
        "train.start": "▶ 开始", "train.stop": "■ 停止", "train.resume": "⟳ 续训", "train.run": "运行",
        "train.steps": "步数", "train.progress": "进度", "train.loss": "损失与评估损失",
        "train.lr": "学习率", "train.log": "最近日志", "train.headless": "不用界面运行同样的训练",
        "train.compare": "比较运行", "train.compare_runs": "要比较的运行", "train.compare_go": "比较",
        "train.diff": "不同的设置", "train.metrics": "最终指标",
        "train.queue": "同一配方，多个数据集", "train.queue_datasets": "数据集（每个一次运行）",
        "train.queue_go": "排队运行", "train.multi_gpu": "多 GPU（accelerate launch）",
        "train.strategy": "策略", "train.gpus": "GPU 数量", "train.generate": "生成配置",
        "train.accelerate_config": "accelerate 配置", "train.accelerate_command": "命令",
        "train.raw_log": "原始日志（运行输出的每一行）",
        **train_settings.STRINGS["zh"],
        **train_preference.STRINGS["zh"],
    },
}


def build(ctx: AppContext) -> Focus:
    with gr.Tab(t("train.tab"), id="train") as tab:
        gr.Markdown(t("train.header"))
        ui = SimpleNamespace(tab=tab, poll_timer=gr.Timer(2.0))
        _build_pickers(ui)
        ui.settings = train_settings.build_settings()
        train_preflight.build_preflight(ui)
        train_runs.build_run_buttons(ui)
        train_runs.build_live_view(ui)
        _build_compare(ui)
        _build_multi_gpu(ui)
    ui.form = [ui.model_box, ui.dataset_picker, ui.method_radio, ui.beta_box, ui.start_picker, *ui.settings]
    _wire(ctx, ui)
    return Focus(ui.run_picker, lambda run: gr.update(choices=train_runs.run_names(ctx), value=run))


def _build_pickers(ui: SimpleNamespace) -> None:
    """Preset, base model, dataset version and the method row."""
    with gr.Row():
        ui.preset_picker = gr.Radio(list(PRESETS), value=CPU_PRESET, label=t("train.preset"), scale=2,
                                    elem_id="train-preset")
        # Presets this machine cannot run sit here, greyed out, each with its reason, before any click.
        ui.unavailable_presets = gr.Radio([], label=t("train.preset_unavailable"), interactive=False,
                                          visible=False, scale=3, elem_id="train-preset-unavailable")
    ui.preset_note = gr.Markdown()
    with gr.Row():
        ui.model_box = gr.Dropdown(["default"], value=train_settings.DEFAULTS.model, allow_custom_value=True,
                                   label=t("train.model"), elem_id="train-model")
        ui.dataset_picker = gr.Dropdown([], allow_custom_value=True, label=t("train.dataset"),
                                        elem_id="train-dataset")
        ui.refresh_button = gr.Button(t("train.refresh"), scale=0, elem_id="train-refresh")
    ui.method_radio, ui.beta_box, ui.start_picker = train_preference.build_method_row()


def _build_compare(ui: SimpleNamespace) -> None:
    with gr.Accordion(t("train.compare"), open=False):
        ui.compare_picker = gr.Dropdown([], multiselect=True, label=t("train.compare_runs"))
        ui.compare_button = gr.Button(t("train.compare_go"))
        ui.compare_plot = gr.LinePlot(x="step", y="value", color="series", elem_id="train-compare-plot")
        ui.diff_table = gr.Dataframe(label=t("train.diff"), interactive=False)
        ui.metrics_table = gr.Dataframe(headers=["run", "loss", "eval_loss", "tokens/s"], label=t("train.metrics"),
                                        interactive=False)
        gr.Markdown(t("train.queue"))
        ui.queue_picker = gr.Dropdown([], multiselect=True, label=t("train.queue_datasets"))
        ui.queue_button = gr.Button(t("train.queue_go"))


def _build_multi_gpu(ui: SimpleNamespace) -> None:
    with gr.Accordion(t("train.multi_gpu"), open=False):
        with gr.Row():
            ui.strategy_picker = gr.Radio(list(launch.STRATEGIES), value="fsdp", label=t("train.strategy"))
            ui.gpus_box = gr.Number(2, precision=0, minimum=2, label=t("train.gpus"))
            ui.generate_button = gr.Button(t("train.generate"))
        ui.accelerate_yaml = gr.Code(label=t("train.accelerate_config"), language="yaml", interactive=False)
        ui.accelerate_command = gr.Code(label=t("train.accelerate_command"), language="shell", interactive=False)


def _bound(ctx: AppContext, handler):
    """`handler` with the context filled in, under its own name (Gradio's API name for it). A function
    rather than a `functools.partial`: Gradio reads a `gr.Request` parameter from a function's type hints
    only, and the handlers that answer in the browser's language take one."""
    @functools.wraps(handler)
    def bound(*args, **kwargs):
        return handler(ctx, *args, **kwargs)

    bound.__signature__ = inspect.signature(functools.partial(handler, ctx))
    return bound


def _wire(ctx: AppContext, ui: SimpleNamespace) -> None:
    on = functools.partial(_bound, ctx)
    price = [ui.price_box, ui.currency_box]
    ctx.demo.load(on(on_page_load), outputs=[ui.dataset_picker, ui.run_picker, ui.compare_picker, ui.queue_picker,
                                             ui.preset_picker, ui.unavailable_presets, *_preset_outputs(ui)])
    ui.preset_picker.change(on(on_preset_change), ui.preset_picker, _preset_outputs(ui))
    # Opening the tab lists the datasets saved and runs made since the page loaded, as Refresh does.
    gr.on([ui.refresh_button.click, ui.tab.select], on(on_refresh_click), [ui.method_radio, ui.dataset_picker],
          [ui.dataset_picker, ui.run_picker, ui.compare_picker, ui.queue_picker, ui.start_picker])
    ui.method_radio.change(lambda method: train_preference.on_method_change(ctx, method), ui.method_radio,
                           [ui.dataset_picker, ui.start_picker])
    ui.check_button.click(on(on_check_click), [*price, *ui.form], [ui.preflight_card, ui.mask_sample, ui.plan_state])
    probe_outputs = [ui.preflight_card, ui.plan_state, ui.probe_state, ui.probe_timer]
    ui.probe_button.click(on(on_probe_click), [*price, ui.plan_state, *ui.form], probe_outputs)
    ui.probe_timer.tick(on(on_probe_tick), [ui.probe_state, ui.plan_state], probe_outputs)
    ui.start_button.click(on(on_start_click), [ui.plan_state, *price, *ui.form], [ui.action_note, ui.run_picker])
    ui.stop_button.click(on(on_stop_click), ui.run_picker, ui.action_note)
    ui.resume_button.click(on(on_resume_click), [ui.run_picker, *price], ui.action_note)
    ui.poll_timer.tick(on(on_poll_tick), ui.run_picker, ui.view_outputs)
    ui.run_picker.change(on(on_poll_tick), ui.run_picker, ui.view_outputs)
    ui.compare_button.click(on(on_compare_click), ui.compare_picker, [ui.compare_plot, ui.diff_table,
                                                                      ui.metrics_table])
    ui.queue_button.click(on(on_queue_click), [ui.queue_picker, ui.plan_state, *price, *ui.form],
                          [ui.action_note, ui.run_picker])
    ui.generate_button.click(on(on_generate_click), [ui.strategy_picker, ui.gpus_box, ui.run_picker, *ui.form],
                             [ui.accelerate_yaml, ui.accelerate_command])


def _preset_outputs(ui: SimpleNamespace) -> list:
    return [ui.preset_note, ui.start_button, ui.model_box, *ui.settings]


def on_page_load(ctx: AppContext, request: gr.Request = None):
    versions = train_preference.dataset_choices(ctx, "sft")
    run_names = train_runs.run_names(ctx)
    running = next((job for job in ctx.jobs.list("train") if not job.state.finished), None)
    selected = running.folder.name if running else (run_names[0] if run_names else None)
    return (gr.update(choices=versions, value=versions[0] if versions else None),
            gr.update(choices=run_names, value=selected), gr.update(choices=run_names),
            gr.update(choices=versions), *_preset_lists(ctx, locale_of(request)),
            *on_preset_change(ctx, CPU_PRESET, request))


def _preset_lists(ctx: AppContext, locale: str = "en"):
    """The presets this machine runs, and those it cannot each with its reason; each labelled in `locale`,
    its value the preset's name (what settings and the API use)."""
    gates = {name: preset_gate(name, ctx.capabilities(), ctx.device()) for name in PRESETS}
    refused = {name: translated(gate.reason, locale) for name, gate in gates.items()
               if not gate.ok and name != CPU_PRESET}
    return (gr.update(choices=[(translated(name, locale), name) for name in PRESETS if name not in refused]),
            gr.update(choices=[(translated(name, locale), name) for name in refused], value=None,
                      visible=bool(refused),
                      info=" ".join(f"🚫 {translated(name, locale)}: {reason}" for name, reason in refused.items())))


def on_preset_change(ctx: AppContext, name, request: gr.Request = None):
    gate = preset_gate(name, ctx.capabilities(), ctx.device())
    preset = preset_settings(name)
    start = gr.update(interactive=gate.ok and not ctx.locked_reason)
    note = gate_note(gate, locale_of(request)) or ("🔒 " + ctx.locked_reason if ctx.locked_reason else "")
    return (note, start, gr.update(value=preset.model), *[gr.update(value=getattr(preset, field)) for field in FIELDS])


def on_refresh_click(ctx: AppContext, method, dataset):
    versions = train_preference.dataset_choices(ctx, method)
    run_names = train_runs.run_names(ctx)
    newest = versions[0] if versions else None  # a typed path stays: the picker takes custom values
    return (gr.update(choices=versions, value=dataset or newest), gr.update(choices=run_names),
            gr.update(choices=run_names), gr.update(choices=versions),
            gr.update(choices=train_preference.start_choices(ctx)))


def on_compare_click(ctx: AppContext, names):
    if len(names or []) < 2:
        return None, None, None
    try:
        return _compare([train_runs.run_dir(ctx, name) for name in names])
    except Exception as error:
        gr.Warning(error_text(error))
        return None, None, None


def on_generate_click(ctx: AppContext, strategy, gpus, run_name, *form_values):
    try:
        text, command = launch.accelerate_files(settings_from(ctx, *form_values), run_name or "run", strategy,
                                                int(gpus or 2))
        target = train_runs.run_dir(ctx, run_name) if run_name else ctx.workspace.exports
        atomic.write_text(target / f"accelerate-{strategy}.yaml", text)
        return text, f"cd {target}\n{command}"
    except Exception as error:
        return error_text(error), ""


def _compare(folders: list[Path]):
    import pandas as pd

    rows = [{"step": r["step"], "value": r["value"], "series": f"{r['run']} · {r['metric']}"}
            for r in runs.curves(folders) if r["metric"] in ("loss", "eval_loss")]
    diff = runs.config_diff(folders)
    headers = ["setting", *[folder.name for folder in folders]]
    metrics = runs.metrics_table(folders)
    return (pd.DataFrame(rows), pd.DataFrame(diff, columns=headers),
            pd.DataFrame(metrics, columns=["run", "loss", "eval_loss", "tokens/s"]))
