"""The Data tab's cleaning form: its widgets, each bound to the `PrepareOptions` field it sets, and the
form's values read back as `PrepareOptions` and `ColumnMapping`."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from core.data import ColumnMapping, PrepareOptions, views
from tabs.common import t

DEFAULTS = PrepareOptions()


def build_cleaning(ui: SimpleNamespace) -> None:
    """The cleaning options; `ui.option_widgets` binds each widget to the `PrepareOptions` field it sets."""
    with gr.Accordion(t("data.cleaning"), open=False, elem_id="data-cleaning"):
        with gr.Row():
            nfc = gr.Checkbox(DEFAULTS.nfc, label=t("data.nfc"), elem_id="data-nfc")
            html = gr.Checkbox(DEFAULTS.html_to_text, label=t("data.html"), elem_id="data-html")
            drop_empty = gr.Checkbox(DEFAULTS.drop_empty_turns, label=t("data.drop_empty"))
            exact_dedup = gr.Checkbox(DEFAULTS.exact_dedup, label=t("data.exact_dedup"))
        with gr.Row():
            same_role = gr.Radio(["merge", "drop"], value=DEFAULTS.same_role, label=t("data.same_role"))
            ends = gr.Radio(["trim", "drop"], value=DEFAULTS.ends, label=t("data.ends"))
            near_dup = gr.Slider(0, 1, DEFAULTS.near_dup_threshold, step=0.05, label=t("data.near_dup"),
                                 elem_id="data-near-dup")
        with gr.Row():
            max_tokens = gr.Number(DEFAULTS.max_tokens, precision=0, minimum=0, label=t("data.max_tokens"))
            ui.model = gr.Textbox(DEFAULTS.model, label=t("data.model"), elem_id="data-model")
            validation = gr.Slider(0, 0.5, DEFAULTS.validation_share, step=0.01, label=t("data.validation"))
            seed = gr.Number(DEFAULTS.seed, precision=0, label=t("data.seed"))
        with gr.Row():
            max_drop = gr.Slider(0.05, 1, DEFAULTS.max_drop_share, step=0.05, label=t("data.max_drop"))
            caps = gr.Textbox(label=t("data.caps"), elem_id="data-caps")
            name_value = gr.Textbox(DEFAULTS.placeholders["name"], label=t("data.name_value"))
            author_value = gr.Textbox(DEFAULTS.placeholders["author"], label=t("data.author_value"))
    # Each widget bound to the option it sets by name: Gradio hands a handler whose inputs are a set of
    # components one {component: value} dict, so reordering the widgets can never shift an option.
    ui.option_widgets = {"nfc": nfc, "html_to_text": html, "drop_empty_turns": drop_empty, "same_role": same_role,
                         "ends": ends, "exact_dedup": exact_dedup, "near_dup_threshold": near_dup,
                         "max_tokens": max_tokens, "model": ui.model, "validation_share": validation, "seed": seed,
                         "max_drop_share": max_drop, "caps": caps, "name": name_value, "author": author_value}


def options_from(form: dict) -> PrepareOptions:
    """The cleaning form's values, keyed by `PrepareOptions` field (and the two placeholder names)."""
    return PrepareOptions(
        nfc=form["nfc"], html_to_text=form["html_to_text"], drop_empty_turns=form["drop_empty_turns"],
        same_role=form["same_role"], ends=form["ends"], exact_dedup=form["exact_dedup"],
        near_dup_threshold=float(form["near_dup_threshold"]), max_tokens=int(form["max_tokens"] or 0),
        model=(form["model"] or "").strip(), validation_share=float(form["validation_share"]),
        seed=int(form["seed"] or 0), max_drop_share=float(form["max_drop_share"]),
        caps=views.parse_caps(form["caps"] or ""), placeholders={"name": form["name"], "author": form["author"]})


def mapping_from(form: dict) -> ColumnMapping | None:
    chosen = {name: value for name, value in form.items() if value}
    return ColumnMapping(**chosen) if chosen.keys() - {"role", "content"} else None
