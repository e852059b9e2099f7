"""Train tab: pick a preset, model and dataset, check the pre-flight card, then start, stop and resume runs.

A thin UI over `core.train`: runs are jobs (`core.train.job:run`) in run folders, so they survive a
closed tab; the tab polls the selected run with a `gr.Timer` and re-attaches to the newest running one
on page load. Widget defaults come from `TrainSettings`. The compare view overlays runs, and the
multi-GPU panel writes an `accelerate launch` config.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import gradio as gr

from core import atomic
from core.errors import BadInputError
from core.train import data, launch, preflight, runs
from core.train.settings import BATCHING, CPU_PRESET, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULERS, TrainSettings, \
    preset_gate, preset_settings
from core.train.start import start_run
from tabs import train_preference, train_probe
from tabs.common import AppContext, Focus, error_text, gate_note, t

DEFAULTS = TrainSettings()
FIELDS = [f.name for f in dataclasses.fields(TrainSettings)
          if f.name not in ("model", "dataset", *train_preference.METHOD_FIELDS)]
CHOICES = {"batching": BATCHING, "precision": PRECISIONS, "scheduler": SCHEDULERS, "optimizer": OPTIMIZERS}
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
        **{f"train.f.{name}": label for name, label in LABELS_EN.items()},
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
        **{f"train.f.{name}": label for name, label in LABELS_ZH.items()},
        **train_preference.STRINGS["zh"],
    },
}


def build(ctx: AppContext) -> Focus:
    with gr.Tab(t("train.tab"), id="train") as tab:
        gr.Markdown(t("train.header"))
        with gr.Row():
            preset_picker = gr.Radio(list(PRESETS), value=CPU_PRESET, label=t("train.preset"), scale=2,
                                     elem_id="train-preset")
            # Presets this machine cannot run sit here, greyed out, each with its reason, before any click.
            unavailable_presets = gr.Radio([], label=t("train.preset_unavailable"), interactive=False,
                                           visible=False, scale=3, elem_id="train-preset-unavailable")
        preset_note = gr.Markdown()
        with gr.Row():
            model_box = gr.Dropdown(["default"], value=DEFAULTS.model, allow_custom_value=True,
                                    label=t("train.model"), elem_id="train-model")
            dataset_picker = gr.Dropdown([], allow_custom_value=True, label=t("train.dataset"),
                                         elem_id="train-dataset")
            refresh_button = gr.Button(t("train.refresh"), scale=0, elem_id="train-refresh")
        method_radio, beta_box, start_picker = train_preference.build_method_row()
        with gr.Accordion(t("train.settings"), open=False, elem_id="train-settings"):
            setting_widgets = [_setting_widget(name) for name in FIELDS]
        with gr.Accordion(t("train.preflight"), open=True):
            with gr.Row():
                price_box = gr.Number(0.30, label=t("train.price"), minimum=0)
                currency_box = gr.Textbox("EUR", label=t("train.currency"), max_length=8)
                check_button = gr.Button(t("train.check"), elem_id="train-check")
                probe_button = gr.Button(t("train.probe"), elem_id="train-probe")
            preflight_card = gr.Markdown(elem_id="train-preflight")
            mask_sample = gr.HighlightedText(label=t("train.mask"), combine_adjacent=True, elem_id="train-mask")
        with gr.Row():
            start_button = gr.Button(t("train.start"), variant="primary", elem_id="train-start")
            stop_button = gr.Button(t("train.stop"), variant="stop", elem_id="train-stop")
            resume_button = gr.Button(t("train.resume"), interactive=False, elem_id="train-resume")
        action_note = gr.Markdown(elem_id="train-note")
        with gr.Row():
            run_picker = gr.Dropdown([], label=t("train.run"), allow_custom_value=True, elem_id="train-run")
            steps_box = gr.Textbox(label=t("train.steps"), interactive=False, elem_id="train-steps")
        progress_text = gr.Markdown(elem_id="train-progress")
        with gr.Row():
            loss_plot = gr.LinePlot(x="step", y="value", color="metric", label=t("train.loss"),
                                    elem_id="train-loss-plot")
            lr_plot = gr.LinePlot(x="step", y="value", label=t("train.lr"), elem_id="train-lr-plot")
        preference_plot = gr.LinePlot(x="step", y="value", color="metric", label=t("train.preference_plot"),
                                      elem_id="train-preference-plot")
        log_box = gr.Textbox(label=t("train.log"), lines=8, max_lines=8, interactive=False, elem_id="train-log")
        headless_code = gr.Code(label=t("train.headless"), language="shell", interactive=False)
        with gr.Accordion(t("train.compare"), open=False):
            compare_picker = gr.Dropdown([], multiselect=True, label=t("train.compare_runs"))
            compare_button = gr.Button(t("train.compare_go"))
            compare_plot = gr.LinePlot(x="step", y="value", color="series", elem_id="train-compare-plot")
            diff_table = gr.Dataframe(label=t("train.diff"), interactive=False)
            metrics_table = gr.Dataframe(headers=["run", "loss", "eval_loss", "tokens/s"], label=t("train.metrics"),
                                         interactive=False)
            gr.Markdown(t("train.queue"))
            queue_picker = gr.Dropdown([], multiselect=True, label=t("train.queue_datasets"))
            queue_button = gr.Button(t("train.queue_go"))
        with gr.Accordion(t("train.multi_gpu"), open=False):
            with gr.Row():
                strategy_picker = gr.Radio(list(launch.STRATEGIES), value="fsdp", label=t("train.strategy"))
                gpus_box = gr.Number(2, precision=0, minimum=2, label=t("train.gpus"))
                generate_button = gr.Button(t("train.generate"))
            accelerate_yaml = gr.Code(label=t("train.accelerate_config"), language="yaml", interactive=False)
            accelerate_command = gr.Code(label=t("train.accelerate_command"), language="shell", interactive=False)
        plan_state, probe_state = gr.State({}), gr.State({})
        poll_timer, probe_timer = gr.Timer(2.0), gr.Timer(1.0, active=False)

    form = [model_box, dataset_picker, method_radio, beta_box, start_picker, *setting_widgets]

    def settings_from(model, dataset, method, beta, start_from, *values) -> TrainSettings:
        numbers = {name: _typed(name, value) for name, value in zip(FIELDS, values)}
        return TrainSettings(model=(model or "default").strip(), dataset=_dataset_path(ctx, dataset),
                             method=method or "sft", beta=float(beta or DEFAULTS.beta),
                             start_from=(start_from or "").strip(), **numbers)

    def on_page_load():
        versions = train_preference.dataset_choices(ctx, "sft")
        run_names = [run.name for run in runs.list_runs(ctx.workspace, ctx.jobs)]
        running = next((job for job in ctx.jobs.list("train") if not job.state.finished), None)
        selected = running.folder.name if running else (run_names[0] if run_names else None)
        return (gr.update(choices=versions, value=versions[0] if versions else None),
                gr.update(choices=run_names, value=selected), gr.update(choices=run_names),
                gr.update(choices=versions), *preset_lists(), *on_preset_change(CPU_PRESET))

    def preset_lists():
        gates = {name: preset_gate(name, ctx.capabilities(), ctx.device()) for name in PRESETS}
        refused = {name: gate.reason for name, gate in gates.items() if not gate.ok and name != CPU_PRESET}
        return (gr.update(choices=[name for name in PRESETS if name not in refused]),
                gr.update(choices=list(refused), value=None, visible=bool(refused),
                          info=" ".join(f"🚫 {name}: {reason}" for name, reason in refused.items())))

    def on_preset_change(name):
        gate = preset_gate(name, ctx.capabilities(), ctx.device())
        preset = preset_settings(name)
        start = gr.update(interactive=gate.ok and not ctx.locked_reason)
        note = gate_note(gate) or ("🔒 " + ctx.locked_reason if ctx.locked_reason else "")
        return (note, start, gr.update(value=preset.model),
                *[gr.update(value=getattr(preset, field)) for field in FIELDS])

    def on_refresh_click(method, dataset):
        versions = train_preference.dataset_choices(ctx, method)
        run_names = [run.name for run in runs.list_runs(ctx.workspace, ctx.jobs)]
        newest = versions[0] if versions else None  # a typed path stays: the picker takes custom values
        return (gr.update(choices=versions, value=dataset or newest), gr.update(choices=run_names),
                gr.update(choices=run_names), gr.update(choices=versions),
                gr.update(choices=train_preference.start_choices(ctx)))

    def on_check_click(price, currency, *form_values, progress=gr.Progress()):
        try:
            ctx.require_unlocked("The pre-flight check")  # it loads the model, materialising the default one
            settings = settings_from(*form_values)
            if settings.method != "sft":
                plan, card, sample = train_preference.check(settings, ctx)
            else:
                progress(0, desc="Loading the tokenizer…")
                tokenizer = _tokenizer(ctx, settings.model, lambda f, m: progress(f, desc=m))
                progress(0.5, desc="Tokenising the dataset…")
                plan = preflight.estimate(settings, ctx.workspace, ctx.device(), tokenizer=tokenizer)
                card, sample = preflight.card(plan), _mask_sample(settings, tokenizer)
        except Exception as error:  # shown in the card; nothing starts
            return error_text(error), None, {}
        return card, sample, {"plan": dataclasses.asdict(plan), "settings": settings.to_dict()}

    def on_probe_click(price, currency, plan_values, *form_values):
        try:
            card, probe = train_probe.start(ctx, settings_from(*form_values), plan_values, price, currency)
        except Exception as error:
            return error_text(error), plan_values, {}, gr.Timer(active=False)
        return card, plan_values, probe, gr.Timer(active=True)  # the probe timer follows the job from here

    def on_probe_tick(probe, plan_values):
        if not probe:
            return gr.update(), plan_values, {}, gr.Timer(active=False)
        card, measured = train_probe.follow(ctx, probe)
        if measured is None:  # still probing: the card says which step
            return card, plan_values, probe, gr.Timer(active=True)
        return card, measured, {}, gr.Timer(active=False)

    def on_start_click(plan_values, price, currency, *form_values):
        try:
            ctx.require_unlocked("Training")
            settings = settings_from(*form_values)
            name = _start_run(ctx, settings, plan_values, price, currency)
        except Exception as error:
            return error_text(error), gr.update()
        return f"⏳ {name}", gr.update(choices=_run_names(ctx), value=name)

    def on_stop_click(run_name):
        if not run_name:
            return ""
        try:
            ctx.jobs.request_stop(_run_dir(ctx, run_name))
        except Exception as error:
            return error_text(error)
        return f"■ {run_name}: saving a checkpoint and the adapter, then stopping…"

    def on_resume_click(run_name, price, currency):
        try:
            ctx.require_unlocked("Training")
            run_dir = _run_dir(ctx, run_name)
            check = runs.resume_check(run_dir, ctx.jobs)
            if not check.ok:
                return f"🚫 {check.reason}"
            start_run(ctx.workspace, ctx.jobs, runs.read_config(run_dir), folder=run_dir, resume=True,
                      price_per_kwh=price, currency=currency)
            return f"⟳ {check.reason}"
        except Exception as error:
            return error_text(error)

    def on_poll_tick(run_name):
        return _run_view(ctx, run_name)

    def on_compare_click(names):
        if len(names or []) < 2:
            return None, None, None
        try:
            return _compare([_run_dir(ctx, name) for name in names])
        except Exception as error:
            gr.Warning(error_text(error))
            return None, None, None

    def on_queue_click(datasets, plan_values, price, currency, *form_values):
        try:
            ctx.require_unlocked("Training")
            base = settings_from(*form_values)
            names = [_start_run(ctx, base.with_changes(dataset=_dataset_path(ctx, dataset)), {}, price, currency)
                     for dataset in datasets or []]
        except Exception as error:
            return error_text(error), gr.update()
        return f"⏳ queued {len(names)}: {', '.join(names)}", gr.update(choices=_run_names(ctx), value=names[-1]
                                                                     if names else None)

    def on_generate_click(strategy, gpus, run_name, *form_values):
        try:
            text, command = launch.accelerate_files(settings_from(*form_values), run_name or "run", strategy,
                                                    int(gpus or 2))
            target = _run_dir(ctx, run_name) if run_name else ctx.workspace.exports
            atomic.write_text(target / f"accelerate-{strategy}.yaml", text)
            return text, f"cd {target}\n{command}"
        except Exception as error:
            return error_text(error), ""

    load_outputs = [dataset_picker, run_picker, compare_picker, queue_picker, preset_picker, unavailable_presets,
                    preset_note, start_button,
                    model_box, *setting_widgets]
    ctx.demo.load(on_page_load, outputs=load_outputs)
    preset_picker.change(on_preset_change, preset_picker, [preset_note, start_button, model_box, *setting_widgets])
    # Opening the tab lists the datasets saved and runs made since the page loaded, as Refresh does.
    gr.on([refresh_button.click, tab.select], on_refresh_click, [method_radio, dataset_picker],
          [dataset_picker, run_picker, compare_picker, queue_picker, start_picker])
    method_radio.change(lambda method: train_preference.on_method_change(ctx, method), method_radio,
                        [dataset_picker, start_picker])
    check_button.click(on_check_click, [price_box, currency_box, *form], [preflight_card, mask_sample, plan_state])
    probe_outputs = [preflight_card, plan_state, probe_state, probe_timer]
    probe_button.click(on_probe_click, [price_box, currency_box, plan_state, *form], probe_outputs)
    probe_timer.tick(on_probe_tick, [probe_state, plan_state], probe_outputs)
    start_button.click(on_start_click, [plan_state, price_box, currency_box, *form], [action_note, run_picker])
    stop_button.click(on_stop_click, run_picker, action_note)
    resume_button.click(on_resume_click, [run_picker, price_box, currency_box], action_note)
    view_outputs = [steps_box, progress_text, loss_plot, lr_plot, log_box, headless_code, resume_button,
                    stop_button, preference_plot]
    poll_timer.tick(on_poll_tick, run_picker, view_outputs)
    run_picker.change(on_poll_tick, run_picker, view_outputs)
    compare_button.click(on_compare_click, compare_picker, [compare_plot, diff_table, metrics_table])
    queue_button.click(on_queue_click, [queue_picker, plan_state, price_box, currency_box, *form],
                       [action_note, run_picker])
    generate_button.click(on_generate_click, [strategy_picker, gpus_box, run_picker, *form],
                          [accelerate_yaml, accelerate_command])
    return Focus(run_picker, lambda run: gr.update(choices=_run_names(ctx), value=run))


def _setting_widget(name: str):
    value, label = getattr(DEFAULTS, name), t(f"train.f.{name}")
    if name in CHOICES:
        return gr.Dropdown(list(CHOICES[name]), value=value, label=label)
    if isinstance(value, bool):
        return gr.Checkbox(value=value, label=label)
    if isinstance(value, int):
        return gr.Number(value, precision=0, label=label)
    if isinstance(value, float):
        return gr.Number(value, label=label)
    return gr.Textbox(value, label=label)


def _typed(name: str, value):
    """Gradio hands numbers back as floats (or None when a box is cleared): restore the field's type."""
    default = getattr(DEFAULTS, name)
    if value is None or value == "":
        return default
    if isinstance(default, bool):
        return bool(value)
    return type(default)(value)


def _run_names(ctx: AppContext) -> list[str]:
    return [run.name for run in runs.list_runs(ctx.workspace, ctx.jobs)]


def _run_dir(ctx: AppContext, run_name: str | None) -> Path:
    """The run folder a name from the page means; names that lead out of the workspace are refused."""
    return ctx.workspace.named(ctx.workspace.runs, run_name, "run")


def _dataset_path(ctx: AppContext, name: str | None) -> str:
    return str(ctx.workspace.named(ctx.workspace.datasets, name, "dataset")) if (name or "").strip() else ""


def _tokenizer(ctx: AppContext, model: str, progress=None):
    """The model's tokenizer, kept between Checks (loading it takes seconds); the default model is
    materialised first if it has not been, with `progress` told."""
    from core import models

    folder = models.resolve(model, ctx.workspace, progress=progress)
    config = folder / "tokenizer_config.json"  # a folder replaced in place is loaded anew
    return _load_tokenizer(str(folder), config.stat().st_mtime if config.is_file() else 0.0)


@functools.lru_cache(maxsize=2)
def _load_tokenizer(folder: str, changed: float):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _mask_sample(settings: TrainSettings, tokenizer):
    """The first training conversation with its trained tokens highlighted; the lint raises when useless."""
    from core.masks import highlight_trained, lint_masks

    records, _ = data.load_splits(settings.dataset, settings.eval_share, settings.seed)
    if settings.assistant_only_loss:
        lint_masks(tokenizer, [record["messages"] for record in records[:32]])
    return highlight_trained(tokenizer, records[0]["messages"])


def _start_run(ctx: AppContext, settings: TrainSettings, plan_values: dict, price, currency) -> str:
    plan = (plan_values or {}).get("plan") or {}
    same = (plan_values or {}).get("settings") == settings.to_dict()  # the estimate was made for these settings
    job = start_run(ctx.workspace, ctx.jobs, settings, eta_s=plan.get("eta_s") if same else None,
                    price_per_kwh=price, currency=currency, capabilities=ctx.capabilities(), device=ctx.device())
    return job.folder.name


def _run_view(ctx: AppContext, run_name: str | None):
    """Everything the live view shows for one run."""
    import pandas as pd

    empty = pd.DataFrame({"step": [], "value": [], "metric": []})
    try:
        run_dir = _run_dir(ctx, run_name)
    except BadInputError:  # nothing picked yet, or a typed name that is no run: an empty view
        run_dir = None
    if run_dir is None or not (run_dir / "job.json").is_file():
        return "", "", empty, empty, "", "", gr.update(interactive=False), gr.update(interactive=False), empty
    job = ctx.jobs.snapshot(run_dir)
    events = job.events()
    rows = [{"step": e["step"], "value": e[m], "metric": m} for e in events for m in ("loss", "eval_loss") if m in e]
    lr_rows = [{"step": e["step"], "value": e["learning_rate"], "metric": "lr"} for e in events if "learning_rate" in e]
    check = runs.resume_check(run_dir, ctx.jobs)
    steps = f"{job.step} / {job.total}" if job.total else str(job.step)
    command = f"python -m core.train {run_dir / runs.CONFIG_FILE}"
    if job.state.value in ("stopped", "interrupted", "failed"):
        command += f"\npython -m core.train {run_dir / runs.CONFIG_FILE} --resume"
    resume = gr.update(interactive=check.ok and not ctx.locked_reason)
    preference_rows = train_preference.curve_rows(events)
    progress = _progress_text(job, events, check)
    if job.state.finished:
        progress += "\n\n" + train_preference.check_text(run_dir)
    return (steps, progress, pd.DataFrame(rows or empty), pd.DataFrame(lr_rows or empty),
            job.log_tail(12), command, resume, gr.update(interactive=not job.state.finished),
            pd.DataFrame(preference_rows or empty))


def _progress_text(job, events: list[dict], check) -> str:
    speeds = [e["tokens_per_s"] for e in events[-5:] if e.get("tokens_per_s")]
    speed = sum(speeds) / len(speeds) if speeds else 0.0
    elapsed = job.elapsed_s
    remaining = elapsed / job.step * (job.total - job.step) if job.step and job.total else None
    parts = [f"**{job.state.value}** · {job.message}", f"elapsed {_clock(elapsed)}"]
    if remaining is not None and not job.state.finished:
        parts.append(f"remaining ~{_clock(remaining)}")
    parts.append(f"{speed:,.0f} tokens/s")
    text = " · ".join(parts)
    if job.error:
        text += f"\n\n❌ {job.error}"
    if job.state.finished:
        text += f"\n\n{'⟳' if check.ok else 'ℹ️'} {check.reason}"
    return text


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _compare(folders: list[Path]):
    import pandas as pd

    rows = [{"step": r["step"], "value": r["value"], "series": f"{r['run']} · {r['metric']}"}
            for r in runs.curves(folders) if r["metric"] in ("loss", "eval_loss")]
    diff = runs.config_diff(folders)
    headers = ["setting", *[folder.name for folder in folders]]
    metrics = runs.metrics_table(folders)
    return (pd.DataFrame(rows), pd.DataFrame(diff, columns=headers),
            pd.DataFrame(metrics, columns=["run", "loss", "eval_loss", "tokens/s"]))
