"""Exact and near-duplicate detection for canonical conversations, removed deterministically and counted.

Contract: `exact_key(messages)` is equal for conversations that differ only in case and whitespace;
`record_id(messages, tools)` is a stable content hash used as the record's `id`.
`NearDuplicates(threshold).flags(texts)` returns, in order, True for each text whose estimated Jaccard
similarity to an EARLIER kept text is at least `threshold`, so the first of a group is always kept and
the same input always gives the same answer. Similarity is over word 3-grams, where every CJK character
counts as a word, so Chinese works as well as English.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np

SHINGLE = 3
NUM_PERM = 64  # 64 permutations: a similarity estimate within ~±0.06, twice as fast as 128
LSH_MAX_THRESHOLD = 0.95  # above this, 64 permutations cannot form the two bands LSH needs
CHUNK = 512  # conversations per numpy batch: ~20 MB of permuted hashes at a time
TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+")
MASK32 = np.uint64(0xFFFFFFFF)


def exact_key(messages: list[dict]) -> bytes:
    parts = [m["role"] + "\x1e" + " ".join(m["content"].casefold().split()) for m in messages]
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=16).digest()


def record_id(messages: list[dict], tools=None) -> str:
    payload = "\x1f".join(m["role"] + "\x1e" + m["content"] for m in messages)
    if tools:
        payload += "\x1d" + json.dumps(tools, ensure_ascii=False, sort_keys=True)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=8).hexdigest()


def comparable_text(messages: list[dict]) -> str:
    return " ".join(m["content"].casefold() for m in messages if m["role"] != "system")


class NearDuplicates:
    """MinHash signatures with LSH banding, in the band sizes `lsh_bands` picks for the threshold.

    Hand-written on numpy rather than datasketch's MinHash / MinHashLSH: with datasketch's fastest public
    path (`MinHash.bulk`, then `MinHashLSH` query and insert) 3,000 conversations ran 1.5-1.7x slower
    (1,800-2,700 against 3,100-3,900 conversations/s in two runs of `python bench/dedupe_bench.py`),
    under the data stage's 3,000 conversations/s goal: datasketch hashes each shingle in a Python loop
    and builds an object per conversation; here a batch of conversations is hashed and permuted in one
    array. So datasketch is no dependency, and `lsh_bands` is its band choice, owned here.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        # Recall-weighted bands: a missed pair stays a duplicate, while a false candidate only costs one
        # signature comparison, because every candidate is checked against the threshold below.
        self.bands, self.rows = lsh_bands(min(threshold, LSH_MAX_THRESHOLD), NUM_PERM)
        generator = np.random.RandomState(1)
        self._a = generator.randint(0, 2**31, NUM_PERM).astype(np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = generator.randint(0, 2**32, NUM_PERM, dtype=np.uint64)
        self._vocabulary: dict[str, int] = {}
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._signatures: list[np.ndarray] = []

    def flags(self, texts: list[str]) -> list[bool]:
        flags = []
        for start in range(0, len(texts), CHUNK):
            flags += [self._seen(signature) for signature in self._signatures_of(texts[start:start + CHUNK])]
        return flags

    def _seen(self, signature: np.ndarray) -> bool:
        keys = [signature[i * self.rows:(i + 1) * self.rows].tobytes() for i in range(self.bands)]
        candidates = {c for table, key in zip(self._tables, keys) for c in table.get(key, ())}
        for candidate in sorted(candidates):
            if np.count_nonzero(signature == self._signatures[candidate]) >= self.threshold * NUM_PERM:
                return True
        for table, key in zip(self._tables, keys):
            table.setdefault(key, []).append(len(self._signatures))
        self._signatures.append(signature)
        return False

    def _signatures_of(self, texts: list[str]) -> np.ndarray:
        ids, starts = [], []
        for text in texts:
            tokens = [self._vocabulary.setdefault(t, len(self._vocabulary)) for t in TOKEN.findall(text)]
            starts.append(len(ids))
            ids += tokens + [2**31] * max(0, SHINGLE - len(tokens))  # pad: a short text is one shingle
        points = np.asarray(ids, dtype=np.uint64)
        count = len(points) - SHINGLE + 1
        hashes = np.zeros(count, dtype=np.uint64)
        for offset in range(SHINGLE):
            hashes = hashes * np.uint64(1_000_003) + points[offset:offset + count]
        hashes = _mix(hashes)
        permuted = (hashes[:, None] * self._a[None, :] + self._b[None, :]) & MASK32
        ends = np.asarray(starts[1:] + [len(points)], dtype=np.int64)
        crossing = np.concatenate([np.arange(end - SHINGLE + 1, end) for end in ends])
        permuted[crossing[crossing < count]] = MASK32  # shingles that span two conversations
        return np.minimum.reduceat(permuted, np.asarray(starts), axis=0).astype(np.uint32)


def lsh_bands(threshold: float, num_perm: int, false_positive_weight: float = 0.1,
              false_negative_weight: float = 0.9) -> tuple[int, int]:
    """(bands, rows per band) with the least weighted area of false positives below `threshold` and false
    negatives above it: the standard LSH choice, as datasketch's `MinHashLSH` makes it (same answers)."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], dtype=float)
    bands, rows = pairs[:, :1], pairs[:, 1:]
    below, above = np.linspace(0.0, threshold, 501), np.linspace(threshold, 1.0, 501)
    false_positives = np.trapezoid(1 - (1 - below ** rows) ** bands, below, axis=1)  # candidate, not similar
    false_negatives = np.trapezoid((1 - above ** rows) ** bands, above, axis=1)  # similar, never a candidate
    best = np.argmin(false_positives * false_positive_weight + false_negatives * false_negative_weight)
    return int(pairs[best, 0]), int(pairs[best, 1])


def _mix(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, so near shingle ids get unrelated hashes."""
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values & MASK32
