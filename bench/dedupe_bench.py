"""Near-duplicate detection speed: the app's numpy MinHash + LSH against datasketch's public API.

    python bench/dedupe_bench.py [--conversations 3000] [--rounds 3]

Why the app hand-writes MinHash on numpy (core/data/dedupe.py): the data stage aims at 3,000
conversations/s. Both arms take the same texts (bench/data_bench.py's generator: ~10 % exact, ~5 % near
duplicates) and flag near duplicates at Jaccard 0.9 over word 3-grams with 64 permutations and the same
LSH bands; they alternate round by round (a shared box swings single timings) and medians are printed:

* chatsmith  — `core.data.dedupe.NearDuplicates(0.9).flags(texts)`;
* datasketch — its fastest public path: `MinHash.bulk` over the shingle sets, then `MinHashLSH` query and
               insert per conversation, each candidate checked against the threshold (datasketch is in
               requirements.txt for this bench only; the app does not import it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data_bench import conversations  # noqa: E402
from core.data.dedupe import NUM_PERM, SHINGLE, TOKEN, NearDuplicates  # noqa: E402

THRESHOLD = 0.9


def with_datasketch(texts: list[str]) -> list[bool]:
    from datasketch import MinHash, MinHashLSH

    def shingles(text: str) -> set[bytes]:
        tokens = TOKEN.findall(text) or [""]
        return {" ".join(tokens[i:i + SHINGLE]).encode() for i in range(max(1, len(tokens) - SHINGLE + 1))}

    lsh, kept, flags = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, weights=(0.1, 0.9)), {}, []
    for index, signature in enumerate(MinHash.bulk([shingles(text) for text in texts], num_perm=NUM_PERM)):
        duplicate = any(signature.jaccard(kept[key]) >= THRESHOLD for key in lsh.query(signature))
        if not duplicate:
            lsh.insert(index, signature)
            kept[index] = signature
        flags.append(duplicate)
    return flags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    texts = [" ".join(turns).casefold() for turns in conversations(args.conversations)]
    arms = {"chatsmith": lambda: NearDuplicates(THRESHOLD).flags(texts), "datasketch": lambda: with_datasketch(texts)}
    times: dict[str, list[float]] = {name: [] for name in arms}
    flagged = {}
    for _ in range(args.rounds):
        for name, arm in arms.items():
            started = time.perf_counter()
            flagged[name] = sum(arm())
            times[name].append(time.perf_counter() - started)
    for name in arms:
        median = statistics.median(times[name])
        print(f"{name:<11} {len(texts) / median:>9,.0f} conversations/s  ({flagged[name]} flagged)")
    ratio = statistics.median(times["datasketch"]) / statistics.median(times["chatsmith"])
    print(f"chatsmith is {ratio:.2f}x datasketch's speed")


if __name__ == "__main__":
    main()
