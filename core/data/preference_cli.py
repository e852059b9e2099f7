"""`python -m core.data preferences`: a preference dataset from files, arena votes and chat thumbs.

    python -m core.data preferences pairs.jsonl hh.jsonl --arena --feedback --workspace ws --name votes
    python -m core.data preferences ultrafeedback.parquet --out out/ --skip-bad

`--arena` reads the workspace's battles (`ratings.sqlite`), `--feedback` its chat ratings; files may be
prompt/chosen/rejected pairs, Anthropic HH transcripts or KTO rows. `collect(workspace, arena, feedback)`
is what the Data tab calls too. Exits 1 with one line naming the file and line of a bad row.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.data.options import PrepareOptions
from core.errors import BadInputError, ChatsmithError
from core.workspace import Workspace


def add_parser(commands) -> None:
    from core.data.preferences import DEFAULTS as defaults

    cli = commands.add_parser("preferences", help="build a preference dataset (DPO pairs, KTO answers)")
    cli.add_argument("inputs", nargs="*", help="prompt/chosen/rejected, Anthropic HH or KTO files")
    cli.add_argument("--arena", action="store_true", help="add the workspace's arena votes")
    cli.add_argument("--feedback", action="store_true", help="add the workspace's chat thumbs and edits")
    where = cli.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="write the files into this folder")
    where.add_argument("--workspace", help="save an immutable version in this workspace")
    cli.add_argument("--from-workspace", help="workspace whose votes and ratings to read (default: --workspace)")
    cli.add_argument("--name", default="preferences")
    cli.add_argument("--skip-bad", action="store_true", help="drop bad rows and report them instead of refusing")
    cli.add_argument("--validation-share", type=float, default=defaults.validation_share)
    cli.add_argument("--seed", type=int, default=defaults.seed)
    cli.add_argument("--max-tokens", type=int, default=defaults.max_tokens, help="0 = no limit")
    cli.add_argument("--model", default=defaults.model, help='tokenizer for lengths ("" to estimate)')
    cli.add_argument("--near-dup-threshold", type=float, default=defaults.near_dup_threshold, help="0 = off")


def collect(workspace: Workspace, arena: bool, feedback: bool) -> tuple[list, dict]:
    """The arena's votes and the chat's ratings as examples, and the counts of what gave none."""
    from core import feedback as chat_feedback
    from core.data.preference_sources import from_arena, from_feedback

    examples, counts = [], {}
    if arena:
        from core.evaluate.arena import Arena

        found, counted = from_arena(Arena(workspace.ratings_db).records() if workspace.ratings_db.exists() else [])
        examples += found
        counts.update({f"arena_{key}": value for key, value in counted.items()})
    if feedback:
        found, counted = from_feedback(chat_feedback.read(workspace))
        examples += found
        counts.update({f"chat_{key}": value for key, value in counted.items()})
    return examples, counts


def build(files: Sequence[str | Path], workspace: Workspace | None, arena: bool, feedback: bool,
          options: PrepareOptions, skip_bad: bool):
    from core.data.preferences import prepare_preferences

    if (arena or feedback) and workspace is None:
        raise BadInputError("--arena and --feedback need a workspace.", "Add --workspace or --from-workspace.")
    examples, counts = collect(workspace, arena, feedback) if workspace else ([], {})
    if (arena or feedback) and not examples and not files:
        raise BadInputError("The arena and the chat hold no usable rating yet (ties give no pair).",
                            "Vote A or B in the arena, or rate chat answers, then build again.")
    return prepare_preferences(files, options, examples, skip_bad_rows=skip_bad, counts=counts)


def run(args: argparse.Namespace) -> int:
    from core.data.preference_versions import save_preferences, write_preference_files

    try:
        options = PrepareOptions(validation_share=args.validation_share, seed=args.seed, max_tokens=args.max_tokens,
                                 model=args.model, near_dup_threshold=args.near_dup_threshold)
        source = args.from_workspace or args.workspace
        workspace = Workspace.resolve(source) if source else None
        prepared = build(args.inputs, workspace, args.arena, args.feedback, options, args.skip_bad)
        if args.out:
            folder = write_preference_files(Path(args.out), prepared, args.name)
        else:
            folder = save_preferences(Workspace.resolve(args.workspace), prepared, args.name)
    except ChatsmithError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = prepared.report
    print(f"kept {report['pairs']} pairs (train {report['splits']['train']}, validation "
          f"{report['splits']['validation']}) and {report['unpaired']} unpaired answers; dropped "
          f"{sum(report['dropped'].values())} {report['dropped']}; duplicates {report['duplicates']}; wrote {folder}")
    return 0
