"""Data stage speed: normalise + validate + exact dedup, then with near-dup, against a `datasets` baseline.

    python bench/data_bench.py [--conversations 100000] [--rounds 3]

Generates conversations across the four formats (Alpaca JSON, ShareGPT JSON, UltraChat JSONL, OpenAI
messages JSONL) with ~10 % exact and ~5 % near duplicates, then times three arms, alternated round by
round because other processes on a shared box swing single runs (medians are printed):

* chatsmith       — `core.data.prepare` with near-dup off (reads the files itself, so JSON parsing is
                    included; the length filter estimates, no tokenizer);
* chatsmith+near  — the same with MinHash near-duplicate removal at 0.9;
* baseline        — what a user would write: per format `datasets.Dataset.from_list(rows).map(normalise)`
                    with a per-row normaliser, then a Python set for exact dedup (rows already parsed).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data import PrepareOptions, prepare  # noqa: E402

WORDS = ("the a model learns from data when each answer is short clear and correct so training on a small "
         "computer stays fast while people compare runs by source and keep every record honest about where "
         "it came from").split()


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def conversations(count: int, seed: int = 0) -> list[list[str]]:
    """Turn texts, ~10 % exact copies and ~5 % copies with one word changed (near duplicates)."""
    rng, out = random.Random(seed), []
    for _ in range(count):
        roll = rng.random()
        if out and roll < 0.10:
            out.append(list(rng.choice(out)))
        elif out and roll < 0.15:
            turns = list(rng.choice(out))
            words = turns[-1].split()
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            turns[-1] = " ".join(words)
            out.append(turns)
        else:
            out.append([sentence(rng, rng.randint(6, 20)), sentence(rng, rng.randint(30, 80))] *
                       rng.choice((1, 1, 1, 2)))
    return out


def as_format(turns: list[str], index: int) -> tuple[str, dict]:
    kind = ("alpaca", "sharegpt", "ultrachat", "messages")[index % 4]
    if kind == "alpaca":
        return kind, {"instruction": turns[-2], "input": "", "output": turns[-1]}
    if kind == "sharegpt":
        return kind, {"conversations": [{"from": ("human", "gpt")[i % 2], "value": t} for i, t in enumerate(turns)]}
    if kind == "ultrachat":
        return kind, {"id": str(index), "data": turns}
    return kind, {"messages": [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]}


def write_inputs(folder: Path, count: int) -> tuple[list[Path], dict[str, list[dict]]]:
    rows: dict[str, list[dict]] = {"alpaca": [], "sharegpt": [], "ultrachat": [], "messages": []}
    for index, turns in enumerate(conversations(count)):
        kind, row = as_format(turns, index)
        rows[kind].append(row)
    paths = [folder / "alpaca.json", folder / "sharegpt.json", folder / "ultrachat.jsonl", folder / "messages.jsonl"]
    paths[0].write_text(json.dumps(rows["alpaca"]), encoding="utf-8")
    paths[1].write_text(json.dumps(rows["sharegpt"]), encoding="utf-8")
    for path, kind in ((paths[2], "ultrachat"), (paths[3], "messages")):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows[kind]), encoding="utf-8")
    return paths, rows


def baseline(rows: dict[str, list[dict]]) -> int:
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()

    def normalise(row: dict) -> dict:
        if row.get("instruction") is not None:
            turns = [("user", row["instruction"]), ("assistant", row["output"])]
        elif row.get("conversations") is not None:
            turns = [("user" if t["from"] == "human" else "assistant", t["value"]) for t in row["conversations"]]
        elif row.get("data") is not None:
            turns = [(("user", "assistant")[i % 2], t) for i, t in enumerate(row["data"])]
        else:
            turns = [(t["role"], t["content"]) for t in row["messages"]]
        messages = [{"role": r, "content": unicodedata.normalize("NFC", c).strip()} for r, c in turns]
        valid = bool(messages) and messages[0]["role"] == "user" and messages[-1]["role"] == "assistant"
        return {"messages": messages, "valid": valid}

    seen, kept = set(), 0
    for part in rows.values():
        mapped = Dataset.from_list(part).map(normalise, remove_columns=list(part[0]))
        for row in mapped:
            key = json.dumps(row["messages"]).lower()
            if row["valid"] and key not in seen:
                seen.add(key)
                kept += 1
    return kept


def timed(function) -> tuple[float, float, object]:
    """Wall and CPU seconds: on a shared box other processes inflate wall time, CPU time shows the work."""
    started, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - started, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    exact = PrepareOptions(model="", near_dup_threshold=0, max_tokens=0, validation_share=0)
    near = PrepareOptions(model="", near_dup_threshold=0.9, max_tokens=0, validation_share=0)
    with tempfile.TemporaryDirectory() as folder:
        paths, rows = write_inputs(Path(folder), args.conversations)
        arms = {"chatsmith": lambda: prepare(paths, exact).report,
                "chatsmith+near": lambda: prepare(paths, near).report,
                "baseline": lambda: baseline(rows)}
        times: dict[str, list[float]] = {name: [] for name in arms}
        cpu: dict[str, list[float]] = {name: [] for name in arms}
        results: dict[str, object] = {}
        for round_ in range(args.rounds):
            for name in (list(arms) if round_ % 2 == 0 else list(arms)[::-1]):
                seconds, cpu_seconds, results[name] = timed(arms[name])
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
    n = args.conversations
    for name in arms:
        wall, busy = statistics.median(times[name]), statistics.median(cpu[name])
        print(f"{name:15s} {n / wall:>9,.0f} conv/s wall ({wall:6.2f} s)   {n / busy:>9,.0f} conv/s CPU "
              f"({busy:6.2f} s)   median of {len(times[name])}")
    for label, measure in (("wall", times), ("CPU", cpu)):
        ratio = statistics.median(measure["baseline"]) / statistics.median(measure["chatsmith"])
        print(f"speed-up vs baseline, {label} time (normalise + validate + exact dedup): {ratio:.1f}x")
    print(f"kept: chatsmith {results['chatsmith']['kept']:,} (duplicates {results['chatsmith']['duplicates']:,}), "
          f"chatsmith+near {results['chatsmith+near']['kept']:,} (near {results['chatsmith+near']['near_duplicates']:,}), "
          f"baseline {results['baseline']:,}")


if __name__ == "__main__":
    main()
