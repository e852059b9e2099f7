"""Headless export: `python -m core.export SUBCOMMAND RUN ...` does what the Export tab does.

    python -m core.export adapter RUN
    python -m core.export merge RUN [--dtype auto|float32|bfloat16|float16]
    python -m core.export gguf RUN --quant Q8_0 [--quant Q4_K_M] [--out PATH] [--keep-intermediate] [--check]
    python -m core.export roundtrip RUN            # prints the report as JSON
    python -m core.export fuse RUN RUN [...] --weights 0.5 0.5 --method linear|cat|ties|dare [--name N]
    python -m core.export space RUN --target cpu|zerogpu --out DIR [--gguf FILE] [--model-repo ID]
    python -m core.export backup RUN --out PATH [--gguf FILE]
    python -m core.export restore ARCHIVE [--name N]
    python -m core.export push RUN --what adapter|merged|gguf|space|backup --repo ID [--public]

The Hub token is read from $HF_TOKEN for `push` and never from the command line, where other users of
the machine could read it in the process list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.errors import ChatsmithError, describe
from core.workspace import Workspace



class ConsoleContext:
    """The job context's interface, printing progress to stderr so stdout stays machine-readable."""

    def __init__(self, params: dict):
        self.params = params

    def progress(self, step: int, total: int | None = None, message: str | None = None) -> None:
        if message:
            print(f"[{step}/{total or '?'}] {message}", file=sys.stderr, flush=True)

    def log(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def event(self, **metrics) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m core.export", description=__doc__.splitlines()[0])
    root.add_argument("--workspace", help="data folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    commands = root.add_subparsers(dest="command", required=True)
    for name in ("adapter", "merge", "gguf", "roundtrip", "space", "backup", "push"):
        command = commands.add_parser(name)
        command.add_argument("run")
        command.add_argument("--out", required=name in ("space", "backup"))
    commands.choices["merge"].add_argument("--dtype", default="auto",
                                          choices=("auto", "float32", "bfloat16", "float16"))
    commands.choices["gguf"].add_argument("--quant", action="append", dest="quants",
                                          choices=("F16", "Q8_0", "Q5_K_M", "Q4_K_M"))
    commands.choices["gguf"].add_argument("--keep-intermediate", action="store_true",
                                          help="keep the lossless F32 (or BF16) GGUF every file is quantised from")
    commands.choices["gguf"].add_argument("--check", action="store_true",
                                          help="run the round-trip check on the files and say which to use")
    commands.choices["roundtrip"].add_argument("--max-new-tokens", type=int, default=24)
    space = commands.choices["space"]
    space.add_argument("--target", choices=("cpu", "zerogpu"), default="cpu")
    space.add_argument("--gguf")
    space.add_argument("--model-repo", default="")
    space.add_argument("--no-bundle", action="store_true", help="download the model at start-up instead")
    commands.choices["backup"].add_argument("--gguf")
    push = commands.choices["push"]
    push.add_argument("--what", required=True, choices=("adapter", "merged", "gguf", "space", "backup"))
    push.add_argument("--repo", required=True)
    push.add_argument("--public", action="store_true")
    push.add_argument("--target", choices=("cpu", "zerogpu"), default="cpu")
    fuse = commands.add_parser("fuse")
    fuse.add_argument("runs", nargs="+")
    fuse.add_argument("--weights", nargs="*", type=float, default=[])
    fuse.add_argument("--method", default="linear", choices=("linear", "cat", "ties", "dare", "dare_ties"))
    fuse.add_argument("--density", type=float, default=0.5)
    fuse.add_argument("--name", default="")
    restore = commands.add_parser("restore")
    restore.add_argument("archive")
    restore.add_argument("--name")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    workspace = Workspace.resolve(args.workspace)
    params = {key: value for key, value in vars(args).items() if value is not None}
    params.update(workspace=str(workspace.root), bundle_model=not params.pop("no_bundle", False))
    try:
        if args.command == "push":
            result = push(workspace, args)
        else:
            from core.export import jobs

            result = getattr(jobs, args.command)(ConsoleContext(params))
    except ChatsmithError as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 2
    print(json.dumps(_full_report(workspace, args) or result, indent=2, ensure_ascii=False))
    return 0


def push(workspace: Workspace, args: argparse.Namespace) -> dict:
    from core.export.publish import push_run

    url = push_run(workspace, args.run, args.what, args.repo, os.environ.get("HF_TOKEN", ""),
                   private=not args.public, space_target=args.target, folder=Path(args.out) if args.out else None,
                   log=lambda line: print(line, file=sys.stderr))
    return {"url": url}


def _full_report(workspace: Workspace, args: argparse.Namespace) -> dict | None:
    """`roundtrip` prints the whole report, not the job's summary."""
    if args.command != "roundtrip":
        return None
    from core.export.run import open_run

    return json.loads((open_run(workspace, args.run).exports / "roundtrip.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
