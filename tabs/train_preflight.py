"""The Train tab's pre-flight section: Check (estimate and mask sample) and Probe speed, with their handlers.

`on_check_click` loads the model's tokenizer (kept between Checks), estimates memory, time and cost
(`core.train.preflight`) and shows the first training conversation with its trained tokens highlighted;
a DPO / KTO form goes to `train_preference.check`. `on_probe_click` submits a few real steps as a job
(`train_probe`) and turns the probe timer on; `on_probe_tick` follows it. Handlers take the `AppContext`
first; the tab binds it.
"""

from __future__ import annotations

import dataclasses
import functools
from types import SimpleNamespace

import gradio as gr

from core.train import data, preflight
from core.train.settings import TrainSettings
from tabs import train_preference, train_probe
from tabs.common import TRAINED_COLOURS, AppContext, error_text, t
from tabs.train_settings import settings_from


def build_preflight(ui: SimpleNamespace) -> None:
    with gr.Accordion(t("train.preflight"), open=True):
        with gr.Row():
            ui.price_box = gr.Number(0.30, label=t("train.price"), minimum=0)
            ui.currency_box = gr.Textbox("EUR", label=t("train.currency"), max_length=8)
            ui.check_button = gr.Button(t("train.check"), elem_id="train-check")
            ui.probe_button = gr.Button(t("train.probe"), elem_id="train-probe")
        ui.preflight_card = gr.Markdown(elem_id="train-preflight")
        ui.mask_sample = gr.HighlightedText(label=t("train.mask"), combine_adjacent=True, color_map=TRAINED_COLOURS,
                                            elem_id="train-mask")
    ui.plan_state, ui.probe_state = gr.State({}), gr.State({})
    ui.probe_timer = gr.Timer(1.0, active=False)


def on_check_click(ctx: AppContext, price, currency, *form_values, progress=gr.Progress()):
    try:
        ctx.require_unlocked("The pre-flight check")  # it loads the model, materialising the default one
        settings = settings_from(ctx, *form_values)
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


def on_probe_click(ctx: AppContext, price, currency, plan_values, *form_values):
    try:
        card, probe = train_probe.start(ctx, settings_from(ctx, *form_values), plan_values, price, currency)
    except Exception as error:
        return error_text(error), plan_values, {}, gr.Timer(active=False)
    return card, plan_values, probe, gr.Timer(active=True)  # the probe timer follows the job from here


def on_probe_tick(ctx: AppContext, probe, plan_values):
    if not probe:
        return gr.update(), plan_values, {}, gr.Timer(active=False)
    card, measured = train_probe.follow(ctx, probe)
    if measured is None:  # still probing: the card says which step
        return card, plan_values, probe, gr.Timer(active=True)
    return card, measured, {}, gr.Timer(active=False)


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
