"""What a collection build reports: files, pages, chunks, tokens, what was skipped and why, the time taken,
and the chunk size against the chat model's context window.

Contract: `build(...)` returns a JSON-friendly dict; `to_markdown(report)` renders it for the UI, the CLI and
`report.md`. `context_window(model)` is the context the app runs `model` with (the llama.cpp backend caps
every model at `core.inference.MAX_CONTEXT`).
"""

from __future__ import annotations

import json
from pathlib import Path

from core.documents.settings import CollectionSettings, RetrievalSettings


def build(name: str, documents: list, skipped: list[dict], chunks: list[dict], settings: CollectionSettings,
          seconds: float) -> dict:
    per_file = {document.name: {"file": document.name, "pages": document.pages, "chunks": 0, "tokens": 0,
                                "note": document.note} for document in documents}
    for chunk in chunks:
        per_file[chunk["source"]]["chunks"] += 1
        per_file[chunk["source"]]["tokens"] += chunk["tokens"]
    context = context_window(settings.model)
    top_k = RetrievalSettings().top_k
    return {"name": name, "files": len(documents), "pages": sum(d.pages for d in documents), "chunks": len(chunks),
            "tokens": sum(chunk["tokens"] for chunk in chunks), "skipped": skipped, "seconds": round(seconds, 2),
            "per_file": list(per_file.values()), "chunk_tokens": settings.chunk_tokens,
            "largest_chunk": max((chunk["tokens"] for chunk in chunks), default=0),
            "overlap_tokens": settings.overlap_tokens, "model": settings.model, "context": context,
            "top_k": top_k, "context_share": round(top_k * settings.chunk_tokens / context, 3) if context else None,
            "dense": settings.embedding_model or None}


def to_markdown(report: dict) -> str:
    lines = [f"**{report['files']} files · {report['pages']} pages · {report['chunks']:,} chunks · "
             f"{report['tokens']:,} tokens · {report['seconds']:.1f} s**", ""]
    if report.get("context"):
        lines += [f"Chunks of at most {report['chunk_tokens']} tokens (largest {report['largest_chunk']}, "
                  f"{report['overlap_tokens']} overlap) in {report['model']}'s tokenizer: {report['top_k']} of them "
                  f"fill {report['context_share']:.0%} of its {report['context']:,}-token context.", ""]
    lines += ["| file | pages | chunks | tokens | note |", "|---|---|---|---|---|"]
    lines += [f"| {row['file']} | {row['pages'] or '–'} | {row['chunks']} | {row['tokens']:,} | {row['note']} |"
              for row in report["per_file"]]
    if report["skipped"]:
        lines += ["", f"**Skipped {len(report['skipped'])} files:**"]
        lines += [f"- {item['reason']}" for item in report["skipped"]]
    search = "BM25 + dense (" + report["dense"] + "), hybrid by reciprocal rank" if report.get("dense") else "BM25"
    return "\n".join(lines + ["", f"Search: {search}."]) + "\n"


def context_window(model: str) -> int:
    from core.inference import MAX_CONTEXT
    from core.models import DEFAULT_ALIASES

    if model in DEFAULT_ALIASES:
        return MAX_CONTEXT
    try:
        config = json.loads((Path(model).expanduser() / "config.json").read_text(encoding="utf-8"))
        return min(MAX_CONTEXT, int(config.get("max_position_embeddings") or MAX_CONTEXT))
    except (OSError, ValueError, TypeError):
        return MAX_CONTEXT
