"""Command line for the Data stage; the Data tab calls the same code.

    python -m core.data prepare assets/samples/identity_alpaca_en.json assets/samples/chat_messages.jsonl --out out/

writes `out/train.jsonl`, `out/validation.jsonl`, `out/report.json` (+ report.md, README.md, dataset.json).
With `--workspace DIR --name NAME` instead of `--out` it saves an immutable version in the workspace.
Exits 1 with a one-line error naming the file (and line) when the input cannot be used.

    python -m core.data preferences [FILE ...] [--arena] [--feedback] --workspace DIR --name votes

builds a preference dataset version (pairs for DPO, unpaired answers for KTO) from preference files, the
arena's votes and the chat's thumbs; see `core.data.preference_cli`.
"""

from __future__ import annotations

import argparse
import sys

from core.data import ColumnMapping, PrepareOptions, Source, prepare, save_version
from core.data.options import ENDS_CHOICES, FORMATS, SAME_ROLE_CHOICES
from core.data.versions import write_files
from core.errors import ChatsmithError

DEFAULTS = PrepareOptions()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m core.data", description=__doc__.splitlines()[0])
    commands = root.add_subparsers(dest="command", required=True)
    cli = commands.add_parser("prepare", help="clean, dedupe and split chat data")
    cli.add_argument("inputs", nargs="+", help="JSON, JSONL, CSV, Parquet files or datasets folders")
    where = cli.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="write the files into this folder")
    where.add_argument("--workspace", help="save an immutable version in this workspace instead")
    cli.add_argument("--name", default="dataset", help="dataset name (version folder and card)")
    cli.add_argument("--validation-share", type=float, default=DEFAULTS.validation_share)
    cli.add_argument("--seed", type=int, default=DEFAULTS.seed)
    cli.add_argument("--max-tokens", type=int, default=DEFAULTS.max_tokens, help="0 = no limit")
    cli.add_argument("--model", default=DEFAULTS.model,
                     help='tokenizer for lengths: "default", a model folder, or "" to estimate')
    cli.add_argument("--near-dup-threshold", type=float, default=DEFAULTS.near_dup_threshold, help="0 = off")
    cli.add_argument("--no-exact-dedup", action="store_true")
    cli.add_argument("--placeholder", action="append", default=[], metavar="KEY=VALUE",
                     help="fill {{KEY}}; default name=Kestrel author=Chatsmith")
    cli.add_argument("--no-nfc", action="store_true", help="skip Unicode NFC and trimming")
    cli.add_argument("--html-to-text", action="store_true", help="strip HTML tags and entities")
    cli.add_argument("--keep-empty-turns", action="store_true", help="drop conversations with empty turns instead")
    cli.add_argument("--same-role", choices=SAME_ROLE_CHOICES, default=DEFAULTS.same_role)
    cli.add_argument("--ends", choices=ENDS_CHOICES, default=DEFAULTS.ends)
    cli.add_argument("--cap", action="append", default=[], metavar="SOURCE=N", help="keep at most N of SOURCE")
    cli.add_argument("--max-drop-share", type=float, default=DEFAULTS.max_drop_share)
    cli.add_argument("--format", action="append", default=[], metavar="FILE=FORMAT",
                     help=f"force a format ({', '.join(FORMATS)}) for a file name")
    cli.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                     help="column mapping for undetected files: instruction, input, output, system, "
                          "messages, role, content")
    from core.data.preference_cli import add_parser

    add_parser(commands)
    return root


def options_from(args: argparse.Namespace) -> PrepareOptions:
    placeholders = dict(DEFAULTS.placeholders) | _pairs(args.placeholder, "--placeholder")
    caps = {key: int(value) for key, value in _pairs(args.cap, "--cap").items()}
    return PrepareOptions(
        nfc=not args.no_nfc, html_to_text=args.html_to_text, drop_empty_turns=not args.keep_empty_turns,
        same_role=args.same_role, ends=args.ends, placeholders=placeholders,
        exact_dedup=not args.no_exact_dedup, near_dup_threshold=args.near_dup_threshold,
        max_tokens=args.max_tokens, model=args.model, caps=caps, validation_share=args.validation_share,
        seed=args.seed, max_drop_share=args.max_drop_share)


def sources_from(args: argparse.Namespace) -> list[Source]:
    from core.errors import BadInputError

    forced = _pairs(args.format, "--format")
    fields = _pairs(args.map, "--map")
    unknown = sorted(set(fields) - set(ColumnMapping.__dataclass_fields__))
    if unknown:
        raise BadInputError(f"--map does not know {', '.join(unknown)}.",
                            "Use instruction, input, output, system, messages, role or content.")
    mapping = ColumnMapping(**fields) if fields else None
    return [Source(path, format=forced.get(path.split("/")[-1], ""), mapping=mapping) for path in args.inputs]


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    from core.errors import BadInputError

    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInputError(f"{flag} {item!r} is not KEY=VALUE.", f"Write it as {flag} key=value.")
        pairs[key] = value
    return pairs


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "preferences":
        from core.data.preference_cli import run

        return run(args)
    try:
        prepared = prepare(sources_from(args), options_from(args),
                           progress=lambda step, total, message: print(f"[{step + 1}/{total}] {message}",
                                                                       file=sys.stderr))
        if args.out:
            folder = write_files(args.out, prepared, args.name)
        else:
            from core.workspace import Workspace

            folder = save_version(Workspace.resolve(args.workspace), prepared, args.name)
    except ChatsmithError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = prepared.report
    print(f"kept {report['kept']} (train {len(prepared.train)}, validation {len(prepared.validation)}); "
          f"dropped {sum(report['dropped'].values())} {report['dropped']}; duplicates {report['duplicates']}, "
          f"near duplicates {report['near_duplicates']}; wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
