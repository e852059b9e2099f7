"""Command line for document collections; the Documents panels call the same code.

    python -m core.documents add FILES [FILES ...] --name NAME [--model default] [--chunk-tokens 256]
        [--overlap-tokens 32] [--embedding-model FOLDER|HUB_ID|default] [--max-file-mb 100]
    python -m core.documents search NAME "question" [--top-k 4] [--mode auto|bm25|dense|hybrid] [--json]
    python -m core.documents list

`add` prints the report (files, pages, chunks, tokens, skipped files and why, time) and the folder, and
exits 1 only when no file could be read. `search` prints the relevant chunks, numbered as a chat answer
would cite them, or says that nothing in the collection is relevant. Every command takes `--workspace DIR`.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.documents.settings import MODES, CollectionSettings, RetrievalSettings
from core.errors import ChatsmithError, describe

DEFAULTS, SEARCH = CollectionSettings(), RetrievalSettings()


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m core.documents", description=__doc__.splitlines()[0])
    root.add_argument("--workspace", help="data folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    commands = root.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="build a collection from files")
    add.add_argument("files", nargs="+", help="PDF, DOCX, HTML, Markdown, text or JSONL files")
    add.add_argument("--name", required=True, help="the collection's name")
    add.add_argument("--model", default=DEFAULTS.model, help='whose tokenizer sizes chunks: "default" or a folder')
    add.add_argument("--chunk-tokens", type=int, default=DEFAULTS.chunk_tokens)
    add.add_argument("--overlap-tokens", type=int, default=DEFAULTS.overlap_tokens)
    add.add_argument("--embedding-model", default="", help="sentence-transformers folder or Hub id (dense search)")
    add.add_argument("--max-file-mb", type=int, default=DEFAULTS.max_file_mb)
    search = commands.add_parser("search", help="the chunks a question would be answered from")
    search.add_argument("name", help="collection name or folder")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=SEARCH.top_k)
    search.add_argument("--mode", choices=MODES, default=SEARCH.mode)
    search.add_argument("--json", action="store_true", help="print the hits as JSON")
    commands.add_parser("list", help="the collections in the workspace")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from core.workspace import Workspace

    try:
        workspace = Workspace.resolve(args.workspace)
        return {"add": _add, "search": _search, "list": _list}[args.command](workspace, args)
    except ChatsmithError as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        return 1


def _add(workspace, args) -> int:
    from core.documents.store import build_collection

    settings = CollectionSettings(model=args.model, chunk_tokens=args.chunk_tokens, overlap_tokens=args.overlap_tokens,
                                  embedding_model=args.embedding_model, max_file_mb=args.max_file_mb)
    folder = build_collection(workspace, args.files, args.name, settings,
                              progress=lambda fraction, message: print(message, file=sys.stderr))
    print((folder / "report.md").read_text(encoding="utf-8"))
    print(f"Saved {folder}")
    return 0


def _search(workspace, args) -> int:
    from core.documents.store import open_collection

    collection = open_collection(workspace, args.name)
    hits = collection.search(args.query, RetrievalSettings(top_k=args.top_k, mode=args.mode))
    if args.json:
        print(json.dumps([{"id": collection.chunk_id(hit.chunk), "where": hit.where, "score": round(hit.score, 4),
                           "bm25": round(hit.bm25, 4), "cosine": hit.cosine, "text": hit.chunk["text"]}
                          for hit in hits], ensure_ascii=False, indent=2))
    elif not hits:
        print(f"Nothing in '{collection.name}' is relevant to this question.")
    for number, hit in enumerate([] if args.json else hits, start=1):
        print(f"[{number}] {hit.where} (score {hit.score:.3f}, {collection.chunk_id(hit.chunk)})\n"
              f"{hit.chunk['text']}\n")
    return 0


def _list(workspace, args) -> int:
    from core.documents.store import list_collections

    for meta in list_collections(workspace):
        counts = meta["counts"]
        print(f"{meta['name']}\t{counts['files']} files, {counts['chunks']} chunks, {counts['tokens']:,} tokens"
              f"{' + embeddings' if meta.get('dense') else ''}\t{meta['folder']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
