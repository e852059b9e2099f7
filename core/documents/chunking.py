"""Token-aware chunks with overlap, each starting with the headings it sits under.

Contract: `chunk_document(document, tokenizer, settings, first_index)` returns chunk dicts
`{"index", "source", "page", "heading", "text", "tokens"}`. `text` is the heading path on its own line, then
the body; `tokens` counts `text` in `tokenizer` (the chat model's own), and never exceeds
`settings.chunk_tokens`. Bodies are cut at paragraph and sentence ends (Latin `.!?;` before a space,
Chinese `。！？；` anywhere, blank lines), and only a sentence longer than a whole chunk is cut inside, at a
token border. Consecutive chunks of one section share up to `settings.overlap_tokens` tokens of whole
sentences. Chunks never span two sections or two PDF pages, so each has one place to cite.

Written here rather than taken from LangChain's or llama-index's splitters: those pull in large
dependency trees for ~60 lines, and neither keeps the page and heading path this app cites.
"""

from __future__ import annotations

import re

from core.documents.parsing import Block, Document
from core.documents.settings import CollectionSettings

SENTENCE_END = re.compile(r"(?<=[。！？；])|(?<=[.!?;])\s+|\n\s*")
MAX_HEADING_CHARS = 200


def chunk_document(document: Document, tokenizer, settings: CollectionSettings, first_index: int = 0) -> list[dict]:
    chunks: list[dict] = []
    for block in document.blocks:
        for text, tokens in _chunk_block(block, tokenizer, settings):
            chunks.append({"index": first_index + len(chunks), "source": document.name, "page": block.page,
                           "heading": block.heading, "text": text, "tokens": tokens})
    return chunks


def count_tokens(tokenizer, texts: list[str]) -> list[int]:
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _chunk_block(block: Block, tokenizer, settings: CollectionSettings) -> list[tuple[str, int]]:
    header = block.heading[:MAX_HEADING_CHARS] + "\n" if block.heading else ""
    budget = settings.chunk_tokens - (count_tokens(tokenizer, [header])[0] if header else 0)
    budget = max(budget, settings.chunk_tokens // 2)  # an absurdly long heading still leaves room for text
    spans = _sentence_spans(block.text)
    # Each unit is measured with the whitespace before it, so a chunk's units add up to the chunk's tokens.
    gaps = [0] + [end for _, end in spans[:-1]]
    sizes = count_tokens(tokenizer, [block.text[gap:end] for gap, (_, end) in zip(gaps, spans)])
    units: list[tuple[int, int, int]] = []
    for (start, end), size in zip(spans, sizes):
        units += [(start, end, size)] if size <= budget else _token_windows(block.text, start, end, tokenizer, budget)
    out: list[tuple[str, int]] = []
    for group in _pack(units, budget, settings.overlap_tokens):
        out += _fit(block.text, header, group, tokenizer, settings.chunk_tokens)
    return out


def _fit(text: str, header: str, group: list, tokenizer, limit: int) -> list[tuple[str, int]]:
    """The group as one chunk, or halved until each half fits (tokens merge differently once joined)."""
    chunk = header + text[group[0][0]:group[-1][1]]
    tokens = count_tokens(tokenizer, [chunk])[0]
    if tokens <= limit:
        return [(chunk, tokens)]
    if len(group) == 1:
        start, end, _ = group[0]
        windows = _token_windows(text, start, end, tokenizer, max(1, group[0][2] - (tokens - limit) - 4))
        return [piece for window in windows for piece in _fit(text, header, [window], tokenizer, limit)]
    middle = len(group) // 2
    return _fit(text, header, group[:middle], tokenizer, limit) + _fit(text, header, group[middle:], tokenizer, limit)


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        if match.start() > start and text[start:match.start()].strip():
            spans.append((start, match.start()))
        start = max(start, match.end())
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def _token_windows(text: str, start: int, end: int, tokenizer, budget: int) -> list[tuple[int, int, int]]:
    """A sentence longer than a chunk, cut every `budget` tokens at token borders."""
    offsets = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    windows = []
    for first in range(0, len(offsets), budget):
        part = offsets[first:first + budget]
        windows.append((start + part[0][0], start + part[-1][1], len(part)))
    return windows


def _pack(units: list[tuple[int, int, int]], budget: int, overlap: int) -> list[list[tuple[int, int, int]]]:
    """Greedy: fill a chunk with whole units; the next one starts with the last units (≤ overlap tokens)."""
    groups, current, size = [], [], 0
    for unit in units:
        if current and size + unit[2] > budget:
            groups.append(current)
            current = _tail(current, overlap)
            size = sum(u[2] for u in current)
            while current and size + unit[2] > budget:
                size -= current.pop(0)[2]
        current.append(unit)
        size += unit[2]
    if current:
        groups.append(current)
    return groups


def _tail(units: list[tuple[int, int, int]], overlap: int) -> list[tuple[int, int, int]]:
    kept, size = [], 0
    for unit in reversed(units):
        if size + unit[2] > overlap:
            break
        kept.insert(0, unit)
        size += unit[2]
    return kept
