"""Evaluate tab: blind battles with a leaderboard, automatic metrics as jobs, and run reports.

The page never learns which model is A or B before the vote: it holds only the battle id and an
idempotency key in `gr.State` (kept server-side per session), and every decision is read from the
battle record in `core.evaluate.arena`, so a tampered model id or winner is ignored. The rater is the
login, or the browser's signed rater cookie, never the session: a reload must not give a fast voter a
clean slate.
"""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from core import inference
from core.access import rater_from_cookies
from core.evaluate import hub_votes, plots, report, session
from core.evaluate.arena import Arena, RateLimit
from core.documents.grounding import DOCS_MARK, with_documents
from core.evaluate.contenders import describe_choice, list_contenders
from core.train.runs import run_folders
from tabs import documents as documents_ui
from tabs.common import AppContext, Focus, error_text, refreshed, t

STRINGS = {
    "en": {
        "evaluate.tab": "⚖️ Evaluate",
        "evaluate.header": "## Evaluate\nBlind side-by-side rating with a leaderboard, plus automatic metrics.",
        "evaluate.arena": "Arena",
        "evaluate.contenders": "Contenders (two are drawn at random for each battle; names stay hidden)",
        "evaluate.prompt": "Prompt (leave empty to draw one from the prompt set)",
        "evaluate.prompt_set": "Prompt set",
        "evaluate.prompt_file": "Or upload questions (JSONL; MT-bench two-turn supported)",
        "evaluate.max_tokens": "Max new tokens per answer",
        "evaluate.next": "New battle",
        "evaluate.answer_a": "Model A",
        "evaluate.answer_b": "Model B",
        "evaluate.vote_a": "👈 A is better",
        "evaluate.vote_b": "👉 B is better",
        "evaluate.vote_tie": "🤝 Tie",
        "evaluate.vote_bad": "👎 Both are bad",
        "evaluate.leaderboard": "Leaderboard",
        "evaluate.columns": "What the columns mean",
        "evaluate.columns_text": (
            "**BT rating**: each model's strength fitted to all votes at once (Bradley-Terry), so the order of "
            "the votes does not matter; on the Elo scale, where 400 points mean 10-to-1 odds of winning. "
            "**95 % CI**: the range the rating stays in when the votes are resampled; it shows once a model "
            "has 5 battles, because with fewer it looks certain without being so. **Elo**: the classic "
            "rating, updated vote by vote, so it depends on their order; shown for comparison."),
        "evaluate.matrices": "Win rates and battle counts",
        "evaluate.style": "Style control: also rate with answer length and markdown held equal",
        "evaluate.export_jsonl": "Export votes (JSONL)",
        "evaluate.export_csv": "Export votes (CSV)",
        "evaluate.metrics": "Automatic metrics",
        "evaluate.metrics_model": "Model",
        "evaluate.metrics_data": "Data (validation split or the shipped set)",
        "evaluate.metrics_limit": "Samples",
        "evaluate.metrics_loss": "Held-out loss and perplexity",
        "evaluate.metrics_start": "Run metrics",
        "evaluate.metrics_stop": "Stop",
        "evaluate.metrics_results": "Results",
        "evaluate.metrics_job": "Per-sample view of",
        "evaluate.report": "Run report",
        "evaluate.report_run": "Run",
        "evaluate.report_make": "Write report",
        "evaluate.writeup_runs": "Runs to compare",
        "evaluate.writeup_make": "Write-up",
        "evaluate.refresh": "Refresh lists",
        "evaluate.docs_model": "Give a model documents (RAG against fine-tune)",
        "evaluate.docs_add": "➕ Add as a contender",
    },
    "zh": {
        "evaluate.tab": "⚖️ 评测",
        "evaluate.header": "## 评测\n盲评并排对比与排行榜，以及自动指标。",
        "evaluate.arena": "竞技场",
        "evaluate.contenders": "参赛模型（每场随机抽取两个，投票前隐藏名称）",
        "evaluate.prompt": "提示词（留空则从提示集中抽取）",
        "evaluate.prompt_set": "提示集",
        "evaluate.prompt_file": "或上传问题（JSONL，支持 MT-bench 两轮问题）",
        "evaluate.max_tokens": "每个回答的最大新词元数",
        "evaluate.next": "新对战",
        "evaluate.answer_a": "模型 A",
        "evaluate.answer_b": "模型 B",
        "evaluate.vote_a": "👈 A 更好",
        "evaluate.vote_b": "👉 B 更好",
        "evaluate.vote_tie": "🤝 平局",
        "evaluate.vote_bad": "👎 都不好",
        "evaluate.leaderboard": "排行榜",
        "evaluate.columns": "各列的含义",
        "evaluate.columns_text": (
            "**BT rating**：用全部投票一次性拟合出的模型强度（Bradley-Terry），与投票顺序无关；采用 Elo 刻度，"
            "相差 400 分表示 10 比 1 的胜率。**95 % CI**：对投票重抽样时评分所在的范围；模型满 5 场对战后才显示，"
            "因为场次更少时它看起来很确定，其实并不可靠。**Elo**：传统评分，逐票更新，因此与投票顺序有关，仅作对照。"),
        "evaluate.matrices": "胜率与对战次数",
        "evaluate.style": "风格控制：在回答长度与 Markdown 相同的条件下再评一次分",
        "evaluate.export_jsonl": "导出投票（JSONL）",
        "evaluate.export_csv": "导出投票（CSV）",
        "evaluate.metrics": "自动指标",
        "evaluate.metrics_model": "模型",
        "evaluate.metrics_data": "数据（验证集或内置提示集）",
        "evaluate.metrics_limit": "样本数",
        "evaluate.metrics_loss": "留出集损失与困惑度",
        "evaluate.metrics_start": "运行指标",
        "evaluate.metrics_stop": "停止",
        "evaluate.metrics_results": "结果",
        "evaluate.metrics_job": "逐样本查看",
        "evaluate.report": "运行报告",
        "evaluate.report_run": "运行",
        "evaluate.report_make": "生成报告",
        "evaluate.writeup_runs": "要比较的运行",
        "evaluate.writeup_make": "撰写总结",
        "evaluate.refresh": "刷新列表",
        "evaluate.docs_model": "给模型配上文档（检索增强与微调对比）",
        "evaluate.docs_add": "➕ 加入参赛模型",
    },
}
BOARD_HEADERS = ["model", "BT rating", "95 % CI", "Elo", "battles", "wins", "losses", "ties", "both bad"]
STYLE_HEADERS = ["model", "style-controlled rating", "95 % CI", "plain BT rating"]
RESULT_HEADERS = ["job", "model", "data", "n", "loss", "perplexity", "ROUGE-L", "BLEU", "length", "empty", "looping"]
SAMPLE_HEADERS = ["id", "prompt", "reference", "answer", "ROUGE-L", "BLEU", "length", "empty", "looping"]
NO_BATTLE = {"battle_id": None, "key": None, "item": None}


def build(ctx: AppContext) -> Focus:
    arena = Arena(ctx.workspace.ratings_db, RateLimit.from_env(),
                  vote_log=ctx.workspace.root / "votes" / "votes.jsonl")
    mirror = hub_votes.start(arena)  # with CHATSMITH_VOTES_REPO set: restore, then mirror to the Hub (no vote lost)
    with gr.Tab(t("evaluate.tab"), id="evaluate") as tab:
        gr.Markdown(t("evaluate.header"))
        if mirror.text():
            gr.Markdown(mirror.text(), elem_id="votes-mirror")
        if arena.set_aside:
            gr.Markdown(f"⚠️ The ratings database was corrupt; it was kept as `{arena.set_aside.name}` and a new one "
                        "was started. Every accepted vote is also in `votes/votes.jsonl`.")
        refresh_button, contenders = _build_arena(ctx, arena, tab)
        _build_metrics(ctx, refresh_button, tab)
        _build_reports(ctx, refresh_button, tab)
    return Focus(contenders, lambda keys: gr.update(choices=list(list_contenders(ctx.workspace)), value=keys))


def _build_arena(ctx: AppContext, arena: Arena, tab: gr.Tab) -> tuple[gr.Button, gr.CheckboxGroup]:
    """Blind battles and the leaderboard; returns the refresh button the other sections also listen to,
    and the contenders (the guided first run points them at base and fine-tune). Opening the tab (each
    section listens to `tab.select`) lists the models made since the page loaded and keeps the picks."""
    with gr.Accordion(t("evaluate.arena"), open=True):
        if os.environ.get("SPACE_ID"):  # on a Space only logged-in raters' votes count
            problem = session.sign_in_problem()  # a login button without OAuth stops the app from starting
            if problem:
                gr.Markdown(f"⚠️ {problem}", elem_id="sign-in-problem")
            else:
                gr.LoginButton()
        with gr.Row():
            contenders = gr.CheckboxGroup(label=t("evaluate.contenders"), scale=5, elem_id="arena-contenders")
            refresh_button = gr.Button(t("evaluate.refresh"), size="sm", scale=1, elem_id="evaluate-refresh")
        with gr.Row():
            docs_model = gr.Dropdown(label=t("evaluate.docs_model"), scale=2, elem_id="arena-docs-model")
            docs_collection = documents_ui.picker(ctx, "arena-docs-collection", "documents.collection")
            docs_add = gr.Button(t("evaluate.docs_add"), size="sm", scale=1, elem_id="arena-docs-add")
        with gr.Row():
            prompt = gr.Textbox(label=t("evaluate.prompt"), scale=3, elem_id="arena-prompt")
            prompt_set = gr.Dropdown(label=t("evaluate.prompt_set"), scale=1, elem_id="arena-prompt-set")
            max_tokens = gr.Slider(16, 512, value=128, step=16, label=t("evaluate.max_tokens"), scale=1,
                                   elem_id="arena-max-tokens")
        prompt_file = gr.File(label=t("evaluate.prompt_file"), file_types=[".jsonl"], height=80)
        next_button = gr.Button(t("evaluate.next"), variant="primary", elem_id="arena-next")
        shown_prompt = gr.Markdown(elem_id="arena-shown-prompt")
        with gr.Row():
            answer_a = gr.Textbox(label=t("evaluate.answer_a"), lines=8, interactive=False, elem_id="arena-a")
            answer_b = gr.Textbox(label=t("evaluate.answer_b"), lines=8, interactive=False, elem_id="arena-b")
        with gr.Row():
            vote_buttons = [gr.Button(t(f"evaluate.vote_{name}"), interactive=False, elem_id=f"arena-vote-{name}")
                            for name in ("a", "b", "tie", "bad")]
        reveal = gr.Markdown(elem_id="arena-reveal")
        leaderboard = gr.Dataframe(headers=BOARD_HEADERS, label=t("evaluate.leaderboard"), interactive=False,
                                   elem_id="leaderboard")
        with gr.Accordion(t("evaluate.columns"), open=False):
            gr.Markdown(t("evaluate.columns_text"), elem_id="leaderboard-columns")
        advice = gr.Markdown(elem_id="leaderboard-advice")
        style_toggle = gr.Checkbox(False, label=t("evaluate.style"), elem_id="leaderboard-style")
        style_table = gr.Dataframe(headers=STYLE_HEADERS, interactive=False, visible=False,
                                   elem_id="leaderboard-style-table")
        style_text = gr.Markdown(elem_id="leaderboard-style-text")
        ratings_plot = gr.Plot(elem_id="leaderboard-plot")
        with gr.Accordion(t("evaluate.matrices"), open=False):
            win_rates = gr.Dataframe(interactive=False, elem_id="arena-win-rates")
            battle_counts = gr.Dataframe(interactive=False, elem_id="arena-battle-counts")
        with gr.Row():
            export_jsonl = gr.Button(t("evaluate.export_jsonl"), elem_id="arena-export-jsonl")
            export_csv = gr.Button(t("evaluate.export_csv"), elem_id="arena-export-csv")
        export_file = gr.File(interactive=False, height=80, elem_id="arena-export-file")
        battle = gr.State(dict(NO_BATTLE))
    cookie_key = ctx.signing_key()

    def rater_of(request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        return session.rater_id(profile.username if profile else None,
                                rater_from_cookies(request.cookies or {}, cookie_key), request.username)

    def on_refresh_clicked():
        keys = list(list_contenders(ctx.workspace))
        sources = session.prompt_sources(ctx.workspace)
        return (gr.update(choices=keys, value=session.default_contenders(keys)),
                gr.update(choices=sources, value=sources[0]))

    def on_next_clicked(current, chosen, typed, source, upload, max_new_tokens, request: gr.Request,
                        profile: gr.OAuthProfile | None = None):
        try:
            rater = rater_of(request, profile)
            item = session.choose_prompt(ctx.workspace, typed, source, upload)
            settings = inference.GenerationSettings(max_new_tokens=int(max_new_tokens))
            started = session.start_battle(arena, ctx.workspace, list(chosen or []), item, rater, settings)
        except Exception as error:  # shown in place; the last battle's record is untouched
            yield current, gr.update(), gr.update(), gr.update(), error_text(error), *[gr.update()] * 5
            return
        yield from _battle_frames(ctx, arena, started, item, settings)

    def vote_handler(winner: str):
        def on_vote_clicked(current, request: gr.Request, style_on, profile: gr.OAuthProfile | None = None):
            try:
                rater = rater_of(request, profile)
                arena.vote(current["battle_id"], winner, rater, current["key"])
                message = session.reveal_text(arena.public_view(current["battle_id"]))
            except Exception as error:  # the vote is refused; the battle stays open to vote again
                return error_text(error), *[gr.update()] * 12
            return message, *_buttons(next_on=True, votes_on=False), *_board(arena), *_style(arena, style_on)
        return on_vote_clicked

    def on_docs_add_clicked(model_key, collection, chosen):
        if not model_key or not collection:
            return gr.update()
        key = f"{model_key}{DOCS_MARK}{collection}"
        grounded = [k for k in chosen or [] if DOCS_MARK in k]
        return gr.update(choices=[*list_contenders(ctx.workspace), *dict.fromkeys([*grounded, key])],
                         value=list(dict.fromkeys([*(chosen or []), key])))

    def on_tab_selected(chosen, docs_current):
        keys = list(list_contenders(ctx.workspace))
        chosen = list(chosen or [])
        if len(chosen) < 2:  # no battle without two: offer the default pair (the newest fine-tune included)
            chosen = list(dict.fromkeys([*chosen, *session.default_contenders(keys)]))[:2]
        return (refreshed([*keys, *(key for key in chosen if DOCS_MARK in key)], chosen),
                refreshed(keys, docs_current))

    def on_docs_refresh():
        return (gr.update(choices=list(list_contenders(ctx.workspace))),
                gr.update(choices=documents_ui.collection_choices(ctx, with_none=False)))

    docs_add.click(on_docs_add_clicked, [docs_model, docs_collection, contenders], contenders)
    for trigger in (ctx.demo.load, refresh_button.click):
        trigger(on_docs_refresh, outputs=[docs_model, docs_collection])
    board_outputs = [leaderboard, advice, ratings_plot, win_rates, battle_counts]
    style_outputs = [style_table, style_text]
    ctx.demo.load(lambda: (*on_refresh_clicked(), *_board(arena)), outputs=[contenders, prompt_set, *board_outputs])
    style_toggle.change(lambda on: _style(arena, on), style_toggle, style_outputs)
    refresh_button.click(on_refresh_clicked, outputs=[contenders, prompt_set])
    tab.select(on_tab_selected, [contenders, docs_model], [contenders, docs_model])
    next_button.click(on_next_clicked, [battle, contenders, prompt, prompt_set, prompt_file, max_tokens],
                      [battle, shown_prompt, answer_a, answer_b, reveal, next_button, *vote_buttons])
    for winner, button in zip(("a", "b", "tie", "both_bad"), vote_buttons):
        button.click(vote_handler(winner), [battle, style_toggle],
                     [reveal, next_button, *vote_buttons, *board_outputs, *style_outputs])
    export_jsonl.click(lambda: str(arena.export_jsonl(_votes_folder(ctx) / "votes.jsonl")), outputs=export_file)
    export_csv.click(lambda: str(arena.export_csv(_votes_folder(ctx) / "votes.csv")), outputs=export_file)
    return refresh_button, contenders


def _battle_frames(ctx: AppContext, arena: Arena, started: dict, item, settings):
    """Outputs for the battle widgets as both answers stream; votes open once both are done."""
    shown = "\n\n".join(f"**{number}.** {turn}" for number, turn in enumerate(item.turns, start=1))
    busy = _buttons(next_on=False, votes_on=False)
    yield started, shown, "", "", "", *busy
    text_a = text_b = ""
    try:
        for text_a, text_b in session.stream_battle(arena, ctx.workspace, started["battle_id"], item, settings):
            yield started, shown, text_a, text_b, "", *busy
    except Exception as error:  # e.g. a model that cannot load: start another battle
        yield started, shown, text_a, text_b, error_text(error), *_buttons(next_on=True, votes_on=False)
        return
    yield started, shown, text_a, text_b, "", *_buttons(next_on=True, votes_on=True)


def _buttons(next_on: bool, votes_on: bool) -> list:
    """Updates for [next, vote a, vote b, tie, both bad]."""
    return [gr.update(interactive=next_on), *[gr.update(interactive=votes_on)] * 4]


def _board(arena: Arena) -> tuple:
    view = session.leaderboard_view(arena)
    matrix_headers = ["", *view["models"]] if view["models"] else None
    return (gr.update(value=view["table"] or None, headers=BOARD_HEADERS),
            "\n".join([f"**{session.votes_text(view['votes'])}**",
                       *(f"- {line}" for line in view["verdicts"] + view["advice"])]),
            plots.ratings_figure(view["rows"]) if view["rows"] else None,
            gr.update(value=view["win_rate"] or None, headers=matrix_headers),
            gr.update(value=view["battles"] or None, headers=matrix_headers))


def _style(arena: Arena, on: bool) -> tuple:
    """The style-controlled table beside the plain ratings, when the box is ticked."""
    if not on:
        return gr.update(visible=False), ""
    view = session.style_view(arena)
    return gr.update(value=view["table"] or None, headers=STYLE_HEADERS, visible=True), view["text"]


def _votes_folder(ctx: AppContext) -> Path:
    return ctx.workspace.exports / "votes"


def _build_metrics(ctx: AppContext, refresh_button: gr.Button, tab: gr.Tab) -> None:
    """Automatic metrics as background jobs, a results table and a per-sample view."""
    with gr.Accordion(t("evaluate.metrics"), open=False):
        with gr.Row():
            metrics_model = gr.Dropdown(label=t("evaluate.metrics_model"), elem_id="metrics-model")
            metrics_data = gr.Dropdown(label=t("evaluate.metrics_data"), elem_id="metrics-data")
            metrics_limit = gr.Number(value=20, precision=0, minimum=1, label=t("evaluate.metrics_limit"))
            metrics_tokens = gr.Slider(16, 512, value=128, step=16, label=t("evaluate.max_tokens"),
                                       elem_id="metrics-max-tokens")
            metrics_loss = gr.Checkbox(value=True, label=t("evaluate.metrics_loss"))
            metrics_documents = documents_ui.picker(ctx, "metrics-documents")
        with gr.Row():
            metrics_start = gr.Button(t("evaluate.metrics_start"), variant="primary", elem_id="metrics-start")
            metrics_stop = gr.Button(t("evaluate.metrics_stop"), elem_id="metrics-stop")
        metrics_status = gr.Markdown(elem_id="metrics-status")
        metrics_table = gr.Dataframe(headers=RESULT_HEADERS, label=t("evaluate.metrics_results"),
                                     interactive=False, elem_id="metrics-table")
        metrics_job = gr.Dropdown(label=t("evaluate.metrics_job"), elem_id="metrics-job")
        samples_table = gr.Dataframe(headers=SAMPLE_HEADERS, interactive=False, wrap=True, elem_id="metrics-samples")
        metrics_timer = gr.Timer(2.0, active=False)
        metrics_folder = gr.State(None)

    def on_refresh_clicked():
        keys, sources = list(list_contenders(ctx.workspace)), session.prompt_sources(ctx.workspace)
        return gr.update(choices=keys, value=keys[0] if keys else None), gr.update(choices=sources, value=sources[-1])

    def on_tab_selected(model_key, source):
        keys, sources = list(list_contenders(ctx.workspace)), session.prompt_sources(ctx.workspace)
        return refreshed(keys, model_key, keys[0] if keys else None), refreshed(sources, source, sources[-1])

    def on_page_load():
        running = [job for job in ctx.jobs.list(kind="evaluate") if not job.state.finished]
        folder = str(running[0].folder) if running else None  # re-attach to a job started before a reload
        return (*on_refresh_clicked(), folder, *on_metrics_tick(folder))

    def on_metrics_start_clicked(model_key, source, limit, max_new_tokens, with_loss, documents):
        try:
            ctx.require_unlocked("Automatic metrics")
            choice = list_contenders(ctx.workspace)[model_key]
            choice = with_documents(choice, documents) if documents else choice
            data = "shipped" if source == session.SHIPPED_SOURCE else \
                str(ctx.workspace.named(ctx.workspace.datasets, source, "dataset"))
            params = {"workspace": str(ctx.workspace.root), "choice": describe_choice(choice), "data": data,
                      "settings": {"limit": int(limit), "max_new_tokens": int(max_new_tokens),
                                   "held_out_loss": bool(with_loss)}}
            folder = session.new_job_folder(ctx.workspace)
            ctx.jobs.submit(folder, "core.evaluate.metrics:run_job", params, kind="evaluate", heavy=True,
                            title=f"Metrics · {choice.id} on {source}")
        except Exception as error:
            return None, error_text(error), gr.Timer(active=False)
        return str(folder), "…", gr.Timer(active=True)

    def on_metrics_stop_clicked(folder):
        if folder:
            ctx.jobs.request_stop(Path(folder))
        return "Stopping…" if folder else ""

    def on_metrics_tick(folder):
        job = ctx.jobs.snapshot(Path(folder)) if folder else None
        status = "" if job is None else (f"**{job.state.value}** · {job.step}/{job.total or '?'} · {job.message}"
                                         + (f"\n\n❌ {job.error}" if job.error else ""))
        results = session.metrics_results(ctx.workspace)
        finished = job is None or job.state.finished
        newest = {"value": results[0]["job"]} if finished and results else {}  # show the result just in
        return (status, [_result_row(r) for r in results] or None,
                gr.update(choices=[r["job"] for r in results], **newest), gr.Timer(active=not finished))

    def on_metrics_job_change(job_name):
        for result in session.metrics_results(ctx.workspace):
            if result["job"] == job_name:
                return [_sample_row(sample) for sample in result["samples"]] or None
        return None

    metrics_outputs = [metrics_status, metrics_table, metrics_job, metrics_timer]
    ctx.demo.load(on_page_load, outputs=[metrics_model, metrics_data, metrics_folder, *metrics_outputs])
    refresh_button.click(on_refresh_clicked, outputs=[metrics_model, metrics_data])
    tab.select(on_tab_selected, [metrics_model, metrics_data], [metrics_model, metrics_data])
    metrics_start.click(on_metrics_start_clicked,
                        [metrics_model, metrics_data, metrics_limit, metrics_tokens, metrics_loss, metrics_documents],
                        [metrics_folder, metrics_status, metrics_timer])
    metrics_stop.click(on_metrics_stop_clicked, metrics_folder, metrics_status)
    metrics_timer.tick(on_metrics_tick, metrics_folder, metrics_outputs)
    metrics_job.change(on_metrics_job_change, metrics_job, samples_table)


def _build_reports(ctx: AppContext, refresh_button: gr.Button, tab: gr.Tab) -> None:
    """A run's report (Markdown + HTML + loss curves) and a write-up comparing several runs."""
    with gr.Accordion(t("evaluate.report"), open=False):
        with gr.Row():
            report_run = gr.Dropdown(label=t("evaluate.report_run"), elem_id="report-run")
            report_button = gr.Button(t("evaluate.report_make"), elem_id="report-make")
            writeup_runs = gr.Dropdown(multiselect=True, label=t("evaluate.writeup_runs"), elem_id="writeup-runs")
            writeup_button = gr.Button(t("evaluate.writeup_make"), elem_id="writeup-make")
        report_files = gr.File(file_count="multiple", interactive=False, elem_id="report-files")
        report_preview = gr.Markdown(elem_id="report-preview")

    def on_refresh_clicked():
        runs = [folder.name for folder in run_folders(ctx.workspace)]  # newest first
        return gr.update(choices=runs, value=runs[0] if runs else None), gr.update(choices=runs)

    def on_tab_selected(run, several):
        runs = sorted(path.parent.name for path in ctx.workspace.runs.glob("*/config.yaml"))
        return refreshed(runs, run, runs[-1] if runs else None), refreshed(runs, list(several or []))

    def on_report_clicked(run):
        try:
            paths = report.write_run_report(ctx.workspace, run)
        except Exception as error:
            return None, error_text(error)
        return [str(path) for path in paths.values()], paths["markdown"].read_text(encoding="utf-8")

    def on_writeup_clicked(runs):
        try:
            path = report.write_writeup(ctx.workspace, list(runs or []))
        except Exception as error:
            return None, error_text(error)
        return [str(path), str(path.with_suffix(".html"))], path.read_text(encoding="utf-8")

    ctx.demo.load(on_refresh_clicked, outputs=[report_run, writeup_runs])
    refresh_button.click(on_refresh_clicked, outputs=[report_run, writeup_runs])
    tab.select(on_tab_selected, [report_run, writeup_runs], [report_run, writeup_runs])
    report_button.click(on_report_clicked, report_run, [report_files, report_preview])
    writeup_button.click(on_writeup_clicked, writeup_runs, [report_files, report_preview])


def _result_row(result: dict) -> list:
    s = result["summary"]
    return [result["job"], result["model"], result["data"], s["samples"], _num(s.get("loss")),
            _num(s.get("perplexity")), _num(s.get("rouge_l"), 3), _num(s.get("bleu")), _num(s.get("mean_length"), 1),
            _num(s.get("empty_rate")), _num(s.get("looping_rate"))]


def _sample_row(sample: dict) -> list:
    return [sample["id"], sample["prompt"], sample.get("reference") or "", sample["answer"],
            _num(sample.get("rouge_l"), 3), _num(sample.get("bleu")), sample["length"], sample["empty"],
            sample["looping"]]


def _num(value, digits: int = 2):
    return None if value is None else round(float(value), digits)
