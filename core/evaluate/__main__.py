"""Headless evaluation.

    python -m core.evaluate leaderboard --votes FILE.jsonl      # or --workspace DIR [--style] for the arena's
    python -m core.evaluate metrics RUN_OR_MODEL --data DIR_OR_JSONL [--limit N]
    python -m core.evaluate report RUN
    python -m core.evaluate writeup RUN RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import ChatsmithError, describe
from core.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        output = args.command(args)
    except ChatsmithError as error:
        print(describe(error), file=sys.stderr)
        return 2
    print(json.dumps(output, indent=2, ensure_ascii=False))
    return 0


def leaderboard_command(args) -> dict:
    from core.evaluate import ratings, verdicts
    from core.evaluate.arena import Arena, read_votes_file

    if args.votes:
        votes, records = read_votes_file(Path(args.votes)), None
    else:
        arena = Arena(Workspace.resolve(args.workspace).ratings_db)
        votes, records = arena.votes(), arena.records()
    rows = ratings.leaderboard(votes, rounds=args.rounds, seed=args.seed)
    output = {"votes": len(votes), "models": rows,
              "advice": ratings.separation_text(ratings.votes_to_separate(rows, len(votes))),
              "verdicts": [verdict["text"] for verdict in verdicts.pair_verdicts(votes)]}
    if args.style:
        if records is None:
            raise ChatsmithError("Style control needs the answers, which only the arena's database holds.",
                                 "Drop --votes to read the workspace's arena.")
        output["style_controlled"] = verdicts.style_controlled(records, rounds=min(args.rounds, 500), seed=args.seed)
    return output


def metrics_command(args) -> dict:
    from core.evaluate import metrics
    from core.evaluate.prompts import load_prompt_set

    workspace = Workspace.resolve(args.workspace)
    settings = metrics.MetricsSettings(limit=args.limit, max_new_tokens=args.max_new_tokens,
                                       held_out_loss=not args.no_loss)
    result = metrics.evaluate(resolve_choice(args.model, workspace), load_prompt_set(args.data), workspace, settings,
                              progress=lambda step, total, message: print(message, file=sys.stderr))
    return result if args.samples else {key: result[key] for key in ("model", "summary", "notes")}


def report_command(args) -> dict:
    from core.evaluate import report

    paths = report.write_run_report(Workspace.resolve(args.workspace), args.run)
    return {name: str(path) for name, path in paths.items()}


def writeup_command(args) -> dict:
    from core.evaluate import report

    return {"writeup": str(report.write_writeup(Workspace.resolve(args.workspace), args.runs))}


def resolve_choice(name: str, workspace: Workspace):
    """A run name, a contender key, "default", a GGUF path or a model folder."""
    from core import inference
    from core.evaluate.contenders import list_contenders

    contenders = list_contenders(workspace)
    for key in (name, f"run/{name}", f"Run {name} · adapter"):
        if key in contenders:
            return contenders[key]
    adapter = workspace.runs / name / "adapter"
    if adapter.is_dir():
        return inference.ModelChoice(kind="adapter", adapter=adapter, label=f"run/{name}")
    if name.endswith(".gguf"):
        return inference.ModelChoice(kind="gguf", gguf=Path(name), label=Path(name).name)
    return inference.ModelChoice(kind="base", model=name, label=name)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.evaluate", description="Chatsmith evaluation.")
    parser.add_argument("--workspace", help="workspace folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    commands = parser.add_subparsers(required=True)
    board = commands.add_parser("leaderboard", help="Elo and Bradley-Terry ratings with 95 %% CIs, as JSON")
    board.add_argument("--votes", help="JSONL of votes (model_a, model_b, winner, rater); default: the arena's")
    board.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples for the CIs")
    board.add_argument("--seed", type=int, default=0)
    board.add_argument("--style", action="store_true", help="also rate with answer length and markdown held equal")
    board.set_defaults(command=leaderboard_command)
    metric = commands.add_parser("metrics", help="automatic metrics for one model, as JSON")
    metric.add_argument("model", help="a run name, 'default', a GGUF file or a model folder")
    metric.add_argument("--data", required=True, help="a dataset version folder, a questions JSONL, or 'shipped'")
    metric.add_argument("--limit", type=int, default=50)
    metric.add_argument("--max-new-tokens", type=int, default=128)
    metric.add_argument("--no-loss", action="store_true", help="skip held-out loss (no transformers load)")
    metric.add_argument("--samples", action="store_true", help="include every sample, not only the summary")
    metric.set_defaults(command=metrics_command)
    report = commands.add_parser("report", help="write a run's evaluation.md / .html / loss.png")
    report.add_argument("run")
    report.set_defaults(command=report_command)
    writeup = commands.add_parser("writeup", help="compile several runs into one comparison document")
    writeup.add_argument("runs", nargs="+")
    writeup.set_defaults(command=writeup_command)
    return parser


if __name__ == "__main__":
    sys.exit(main())
