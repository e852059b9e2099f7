"""The Evaluate tab's arena: blind battles, the votes, and the leaderboard.

The page never learns which model is A or B before the vote: it holds only the battle id and an
idempotency key in `gr.State` (kept server-side per session), and every decision is read from the
battle record in `core.evaluate.arena`, so a tampered model id or winner is ignored. The rater is the
login, or the browser's signed rater cookie, never the session: a reload must not give a fast voter a
clean slate. Models are shown by the names people gave them (`core.evaluate.names`); the checkboxes'
values stay the keys the battles, the API and the vote records hold.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from core import inference
from core.access import rater_from_cookies
from core.documents.grounding import DOCS_MARK
from core.evaluate import names, plots, session
from core.evaluate.arena_host import ArenaHost
from core.evaluate.contenders import list_contenders
from tabs import documents as documents_ui
from tabs.common import AppContext, error_text, refreshed, t
from tabs.messages import locale_of, localised, translated

BOARD_HEADERS = ["model", "BT rating", "95 % CI", "Elo", "battles", "wins", "losses", "ties", "both bad", "id"]
STYLE_HEADERS = ["model", "style-controlled rating", "95 % CI", "plain BT rating"]
NO_BATTLE = {"battle_id": None, "key": None, "item": None}


@dataclass
class ArenaWidgets:
    contenders: gr.CheckboxGroup
    docs_model: gr.Dropdown
    prompt: gr.Textbox
    prompt_set: gr.Dropdown
    prompt_file: gr.File
    max_tokens: gr.Slider
    next_button: gr.Button
    shown_prompt: gr.Markdown
    answers: list
    vote_buttons: list
    reveal: gr.Markdown
    board: list
    """[leaderboard, advice, ratings plot, win rates, battle counts]: what `_board` fills."""
    style_toggle: gr.Checkbox
    style: list
    """[style table, style text]: what `_style` fills."""
    battle: gr.State
    mirror_notice: gr.Markdown | None = None
    """The line about the votes' Hub mirror ("restoring…" until the restore at start-up has ended)."""
    restore_timer: gr.Timer | None = None


def contender_choices(ctx: AppContext, extra=(), locale: str = "en") -> list[tuple[str, str]]:
    """(name, key) pairs for every model here, plus `extra` keys (documents-grounded picks); names in `locale`."""
    return localised(names.choices(ctx.workspace, [*list_contenders(ctx.workspace), *extra]), locale)


def build(ctx: AppContext, host: ArenaHost, tab: gr.Tab,
          mirror_notice: gr.Markdown) -> tuple[gr.Button, gr.CheckboxGroup]:
    """Blind battles and the leaderboard; returns the refresh button the other sections also listen to,
    and the contenders (the guided first run points them at base and fine-tune)."""
    with gr.Accordion(t("evaluate.arena"), open=True):
        _build_sign_in()
        with gr.Row():
            contenders = gr.CheckboxGroup(label=t("evaluate.contenders"), scale=5, elem_id="arena-contenders")
            refresh_button = gr.Button(t("evaluate.refresh"), size="sm", scale=1, elem_id="evaluate-refresh")
        with gr.Row():
            docs_model = gr.Dropdown(label=t("evaluate.docs_model"), scale=2, elem_id="arena-docs-model")
            docs_collection = documents_ui.picker(ctx, "arena-docs-collection", "documents.collection")
            docs_add = gr.Button(t("evaluate.docs_add"), size="sm", scale=1, elem_id="arena-docs-add")
        widgets = _build_battle(contenders, docs_model)
        export_jsonl, export_csv, export_file = _build_board(widgets)
    widgets.mirror_notice, widgets.restore_timer = mirror_notice, gr.Timer(1.0, active=False)
    _wire_lists(ctx, host, tab, widgets, refresh_button, docs_collection, docs_add)
    _wire_battles(ctx, host, widgets)
    _wire_board(ctx, host, widgets)
    export_jsonl.click(lambda: str(host.arena.export_jsonl(_votes_folder(ctx) / "votes.jsonl")), outputs=export_file)
    export_csv.click(lambda: str(host.arena.export_csv(_votes_folder(ctx) / "votes.csv")), outputs=export_file)
    return refresh_button, contenders


def _build_sign_in() -> None:
    if os.environ.get("SPACE_ID"):  # on a Space only logged-in raters' votes count
        problem = session.sign_in_problem()  # a login button without OAuth stops the app from starting
        if problem:
            gr.Markdown(f"⚠️ {problem}", elem_id="sign-in-problem")
        else:
            gr.LoginButton()


def _build_battle(contenders, docs_model) -> ArenaWidgets:
    with gr.Row():
        prompt = gr.Textbox(label=t("evaluate.prompt"), scale=3, elem_id="arena-prompt")
        prompt_set = gr.Dropdown(label=t("evaluate.prompt_set"), scale=1, elem_id="arena-prompt-set")
        max_tokens = gr.Slider(16, 512, value=128, step=16, label=t("evaluate.max_tokens"), scale=1,
                               elem_id="arena-max-tokens")
    # Tall enough for its drop zone's text and icon: at 80 px the box showed a squashed sliver.
    prompt_file = gr.File(label=t("evaluate.prompt_file"), file_types=[".jsonl"], height=150,
                          elem_id="arena-prompt-file")
    next_button = gr.Button(t("evaluate.next"), variant="primary", elem_id="arena-next")
    shown_prompt = gr.Markdown(elem_id="arena-shown-prompt")
    answers = []
    with gr.Row():
        for side in ("a", "b"):
            with gr.Column():
                gr.Markdown(t(f"evaluate.answer_{side}"))
                # Rendered, not plain text: turn headings and the models' own markdown read as text, not `**`.
                answers.append(gr.Markdown(container=True, min_height=180, max_height=480, elem_id=f"arena-{side}"))
    with gr.Row():
        vote_buttons = [gr.Button(t(f"evaluate.vote_{name}"), interactive=False, elem_id=f"arena-vote-{name}")
                        for name in ("a", "b", "tie", "bad")]
    reveal = gr.Markdown(elem_id="arena-reveal")
    return ArenaWidgets(contenders, docs_model, prompt, prompt_set, prompt_file, max_tokens, next_button,
                        shown_prompt, answers, vote_buttons, reveal, [], None, [], gr.State(dict(NO_BATTLE)))


def _build_board(widgets: ArenaWidgets) -> tuple:
    leaderboard = gr.Dataframe(headers=BOARD_HEADERS, label=t("evaluate.leaderboard"), interactive=False,
                               wrap=True, elem_id="leaderboard")
    with gr.Accordion(t("evaluate.columns"), open=False):
        gr.Markdown(t("evaluate.columns_text"), elem_id="leaderboard-columns")
    advice = gr.Markdown(elem_id="leaderboard-advice")
    widgets.style_toggle = gr.Checkbox(False, label=t("evaluate.style"), elem_id="leaderboard-style")
    widgets.style = [gr.Dataframe(headers=STYLE_HEADERS, interactive=False, visible=False, wrap=True,
                                  elem_id="leaderboard-style-table"), gr.Markdown(elem_id="leaderboard-style-text")]
    ratings_plot = gr.Plot(elem_id="leaderboard-plot")
    with gr.Accordion(t("evaluate.matrices"), open=False):
        win_rates = gr.Dataframe(interactive=False, wrap=True, elem_id="arena-win-rates")
        battle_counts = gr.Dataframe(interactive=False, wrap=True, elem_id="arena-battle-counts")
    widgets.board = [leaderboard, advice, ratings_plot, win_rates, battle_counts]
    with gr.Row():
        export_jsonl = gr.Button(t("evaluate.export_jsonl"), elem_id="arena-export-jsonl")
        export_csv = gr.Button(t("evaluate.export_csv"), elem_id="arena-export-csv")
    export_file = gr.File(interactive=False, height=80, elem_id="arena-export-file")
    return export_jsonl, export_csv, export_file


def _wire_lists(ctx: AppContext, host: ArenaHost, tab: gr.Tab, w: ArenaWidgets, refresh_button, docs_collection,
                docs_add) -> None:
    """The contender and prompt-set lists: at page load, on Refresh, on opening the tab, and "add with documents".

    Refresh checks the default pair (the default model against the newest fine-tune). Opening the tab
    (often in the same instant as a Refresh click) only renews the choices and leaves the picks alone,
    unless fewer than two of them still exist: then it checks the same default pair. So whichever of
    the two lands last, the page ends with what Refresh asked for."""

    def on_refresh_clicked(request: gr.Request = None):
        keys = list(list_contenders(ctx.workspace))
        sources = session.prompt_sources(ctx.workspace)
        return (gr.update(choices=contender_choices(ctx, locale=locale_of(request)),
                          value=session.default_contenders(keys)),
                gr.update(choices=sources, value=sources[0]))

    def on_tab_selected(chosen, docs_current, request: gr.Request = None):
        locale = locale_of(request)
        keys = list(list_contenders(ctx.workspace))
        grounded = [key for key in chosen or [] if DOCS_MARK in key]
        still = [key for key in chosen or [] if key in keys or key in grounded]
        choices = contender_choices(ctx, grounded, locale)
        picks = gr.update(choices=choices) if len(still) >= 2 else \
            gr.update(choices=choices, value=session.default_contenders(keys))
        return picks, refreshed(contender_choices(ctx, locale=locale), docs_current)

    def on_docs_add_clicked(model_key, collection, chosen, request: gr.Request = None):
        if not model_key or not collection:
            return gr.update()
        key = f"{model_key}{DOCS_MARK}{collection}"
        grounded = [k for k in chosen or [] if DOCS_MARK in k]
        return gr.update(choices=contender_choices(ctx, dict.fromkeys([*grounded, key]), locale_of(request)),
                         value=list(dict.fromkeys([*(chosen or []), key])))

    def on_docs_refresh(request: gr.Request = None):
        return (gr.update(choices=contender_choices(ctx, locale=locale_of(request))),
                gr.update(choices=documents_ui.collection_choices(ctx, with_none=False)))

    def on_arena_load(request: gr.Request = None):
        return (*on_refresh_clicked(request), *_board(ctx, host, locale_of(request)), host.notice(),
                gr.Timer(active=host.restoring))

    docs_add.click(on_docs_add_clicked, [w.docs_model, docs_collection, w.contenders], w.contenders)
    for trigger in (ctx.demo.load, refresh_button.click):
        trigger(on_docs_refresh, outputs=[w.docs_model, docs_collection])
    ctx.demo.load(on_arena_load, outputs=[w.contenders, w.prompt_set, *w.board, w.mirror_notice, w.restore_timer])
    w.style_toggle.change(lambda on: _style(ctx, host, on), w.style_toggle, w.style)
    refresh_button.click(on_refresh_clicked, outputs=[w.contenders, w.prompt_set])
    tab.select(on_tab_selected, [w.contenders, w.docs_model], [w.contenders, w.docs_model])


def _wire_battles(ctx: AppContext, host: ArenaHost, w: ArenaWidgets) -> None:
    """New battle: draw a prompt, stream both answers, open the votes; a vote reveals the names."""
    arena, cookie_key = host.arena, ctx.signing_key()

    def rater_of(request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        return session.rater_id(profile.username if profile else None,
                                rater_from_cookies(request.cookies or {}, cookie_key), request.username)

    def on_next_clicked(current, chosen, typed, source, upload, max_new_tokens, request: gr.Request,
                        profile: gr.OAuthProfile | None = None):
        try:
            rater = rater_of(request, profile)
            item = session.choose_prompt(ctx.workspace, typed, source, upload)
            settings = inference.GenerationSettings(max_new_tokens=int(max_new_tokens))
            started = session.start_battle(arena, ctx.workspace, list(chosen or []), item, rater, settings)
        except Exception as error:  # shown in place; the last battle's record is untouched
            yield current, gr.update(), gr.update(), gr.update(), error_text(error, locale_of(request)), \
                *[gr.update()] * 5
            return
        yield from _battle_frames(ctx, host, started, item, settings, locale_of(request))

    def vote_handler(winner: str):
        def on_vote_clicked(current, request: gr.Request, style_on, profile: gr.OAuthProfile | None = None):
            try:
                rater = rater_of(request, profile)
                arena.vote(current["battle_id"], winner, rater, current["key"])
                message = translated(session.reveal_text(arena.public_view(current["battle_id"]), ctx.workspace),
                                     locale_of(request))
            except Exception as error:  # the vote is refused; the battle stays open to vote again
                return error_text(error, locale_of(request)), *[gr.update()] * 12
            return (message, *_buttons(next_on=True, votes_on=False), *_board(ctx, host, locale_of(request)),
                    *_style(ctx, host, style_on))
        return on_vote_clicked

    w.next_button.click(on_next_clicked, [w.battle, w.contenders, w.prompt, w.prompt_set, w.prompt_file,
                                          w.max_tokens],
                        [w.battle, w.shown_prompt, *w.answers, w.reveal, w.next_button, *w.vote_buttons])
    for winner, button in zip(("a", "b", "tie", "both_bad"), w.vote_buttons):
        button.click(vote_handler(winner), [w.battle, w.style_toggle],
                     [w.reveal, w.next_button, *w.vote_buttons, *w.board, *w.style])


def _wire_board(ctx: AppContext, host: ArenaHost, w: ArenaWidgets) -> None:
    """While the Hub votes are being restored, the notice says so and the board fills in once they are in."""

    def on_restore_tick(request: gr.Request = None):
        return (host.notice(), *_board(ctx, host, locale_of(request)), gr.Timer(active=host.restoring))

    w.restore_timer.tick(on_restore_tick, outputs=[w.mirror_notice, *w.board, w.restore_timer],
                         show_progress="hidden")


def _battle_frames(ctx: AppContext, host: ArenaHost, started: dict, item, settings, locale: str = "en"):
    """Outputs for the battle widgets as both answers stream; votes open once both are done."""
    shown = "\n\n".join(f"**{number}.** {turn}" for number, turn in enumerate(item.turns, start=1))
    busy = _buttons(next_on=False, votes_on=False)
    yield started, shown, "", "", "", *busy
    text_a = text_b = ""
    try:
        for text_a, text_b in session.stream_battle(host.arena, ctx.workspace, started["battle_id"], item, settings):
            yield started, shown, text_a, text_b, "", *busy
    except Exception as error:  # e.g. a model that cannot load: start another battle
        yield started, shown, text_a, text_b, error_text(error, locale), *_buttons(next_on=True, votes_on=False)
        return
    yield started, shown, text_a, text_b, "", *_buttons(next_on=True, votes_on=True)


def _buttons(next_on: bool, votes_on: bool) -> list:
    """Updates for [next, vote a, vote b, tie, both bad]."""
    return [gr.update(interactive=next_on), *[gr.update(interactive=votes_on)] * 4]


def _board(ctx: AppContext, host: ArenaHost, locale: str = "en") -> tuple:
    """[leaderboard, advice, ratings plot, win rates, battle counts], the board's words in `locale`."""
    view = session.leaderboard_view(host.arena, workspace=ctx.workspace)
    named = functools.partial(translated, locale=locale)
    matrix_headers = ["", *map(named, view["models"])] if view["models"] else None
    table = [[named(row[0]), row[1], named(row[2]), *row[3:]] for row in view["table"]]
    headers = [translated(header, locale) for header in BOARD_HEADERS]
    votes = translated(session.votes_text(view["votes"]), locale)
    advice = [translated(line, locale) for line in view["verdicts"] + view["advice"]]
    return (gr.update(value=table or None, headers=headers),
            "\n".join([f"**{votes}**", *(f"- {line}" for line in advice)]),
            plots.ratings_figure(view["rows"]) if view["rows"] else None,
            gr.update(value=[[named(row[0]), *row[1:]] for row in view["win_rate"]] or None, headers=matrix_headers),
            gr.update(value=[[named(row[0]), *row[1:]] for row in view["battles"]] or None, headers=matrix_headers))


def _style(ctx: AppContext, host: ArenaHost, on: bool) -> tuple:
    """The style-controlled table beside the plain ratings, when the box is ticked."""
    if not on:
        return gr.update(visible=False), ""
    view = session.style_view(host.arena, workspace=ctx.workspace)
    return gr.update(value=view["table"] or None, headers=STYLE_HEADERS, visible=True), view["text"]


def _votes_folder(ctx: AppContext) -> Path:
    return ctx.workspace.exports / "votes"
