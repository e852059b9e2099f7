"""Evaluate tab: blind battles with a leaderboard, automatic metrics as jobs, and run reports.

This module assembles the tab and holds its labels; each section lives in its own module with its
handlers: `tabs.evaluate_arena` (battles, votes, leaderboard), `tabs.evaluate_metrics` (automatic
metrics) and `tabs.evaluate_reports` (run reports and write-ups). The arena's database is opened at app
start-up and its Hub votes are restored in the background (`core.evaluate.arena_host`), so building the
page never waits on the network.
"""

from __future__ import annotations

import gradio as gr

from core.evaluate.arena_host import ArenaHost
from tabs import evaluate_arena, evaluate_metrics, evaluate_reports
from tabs.common import AppContext, Focus, t

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


def build(ctx: AppContext) -> Focus:
    host = ArenaHost(ctx.workspace).start()  # with CHATSMITH_VOTES_REPO set: restores in the background
    with gr.Tab(t("evaluate.tab"), id="evaluate") as tab:
        gr.Markdown(t("evaluate.header"))
        mirror_notice = gr.Markdown(host.notice(), elem_id="votes-mirror")
        if host.arena.set_aside:
            gr.Markdown(f"⚠️ The ratings database was corrupt; it was kept as `{host.arena.set_aside.name}` and a "
                        "new one was started. Every accepted vote is also in `votes/votes.jsonl`.")
        refresh_button, contenders = evaluate_arena.build(ctx, host, tab, mirror_notice)
        evaluate_metrics.build(ctx, refresh_button, tab)
        evaluate_reports.build(ctx, refresh_button, tab)
    return Focus(contenders, lambda keys: gr.update(choices=evaluate_arena.contender_choices(ctx), value=keys))
