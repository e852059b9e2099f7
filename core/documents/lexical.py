"""BM25 over words: English stemmed, Chinese segmented by jieba, saved beside the chunks and loaded back.

Contract: `terms(text)` turns any text into index terms: NFKC-normalised and lower-cased; runs of Chinese
characters are segmented by `jieba` in its search mode (which also emits the short words inside long
ones, so 消费者 matches 消费); other words are split on non-letters and stemmed with the Snowball English
stemmer (PyStemmer), so "elected" matches "election". Stop words come from `bm25s`' English and Chinese
lists. `Bm25Index.build(texts)` indexes, `.save(folder)` / `Bm25Index.load(folder)` keep it on disk (bm25s'
own sparse-matrix files), and `.scores(query)` gives one BM25 score per chunk, 0 where no term matches.

Libraries, and why: `bm25s` (numpy only, sparse scoring, saves and memory-maps its index) rather than
`rank_bm25` (pure-Python loops over every document per query; the retrieval bench measures both).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from pathlib import Path

import numpy as np

CHINESE_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
WORD_OR_CHINESE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+")
MODAL_VERBS = frozenset({"must", "shall", "may", "might", "would", "could"})
"""Missing from bm25s' English list; in questions they carry no topic, and rules and licences are full of them."""


def terms(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[str] = []
    stop = _stopwords()
    for match in WORD_OR_CHINESE.finditer(text):
        piece = match.group()
        if CHINESE_RUN.fullmatch(piece):
            out += [word for word in _jieba().cut_for_search(piece) if word not in stop]
        elif piece not in stop:
            out.append(_stem(piece))
    return out


class Bm25Index:
    """A bm25s index of chunk texts."""

    def __init__(self, retriever):
        self.retriever = retriever

    @classmethod
    def build(cls, texts: list[str]) -> "Bm25Index":
        import bm25s

        retriever = bm25s.BM25()
        # An empty term list would make bm25s drop the row; a placeholder keeps chunk i at row i.
        retriever.index([terms(text) or ["\u2205"] for text in texts], show_progress=False)
        return cls(retriever)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "Bm25Index":
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        return cls(bm25s.BM25.load(str(folder), show_progress=False))

    def scores(self, query: str) -> np.ndarray:
        words = terms(query)
        if not words:
            return np.zeros(self.retriever.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.retriever.get_scores(words), dtype=np.float32)


@functools.cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_CHINESE, STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | frozenset(STOPWORDS_CHINESE) | MODAL_VERBS


@functools.cache
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it prints "Building prefix dict…" on first use otherwise
    return jieba


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


@functools.cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")
