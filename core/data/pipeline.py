"""The Data recipe: read → convert → clean → dedupe → length filter → caps → split, with a report.

Contract: `prepare(inputs, options)` returns a `Prepared` (train and validation records in the canonical
format, the report, the rejected rows for the preview) and writes nothing. `inspect(path)` reads one file
and says what format it looks like, for the tab. Rows are processed in input order (files in the order
given, lines in file order), so the same input always keeps the same records.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data import clean, dedupe, formats, lengths, readers, report
from core.data.options import PrepareOptions, Source
from core.errors import BadInputError

Progress = Callable[[int, int, str], None]
REJECTS_KEPT = 2000  # rows kept for the preview; the counts cover all of them


@dataclass(frozen=True)
class Reject:
    reason: str
    source: str
    file: str
    line: int
    detail: str
    raw: Any


@dataclass
class Prepared:
    train: list[dict]
    validation: list[dict]
    report: dict
    options: PrepareOptions
    rejects: list[Reject] = field(default_factory=list)

    @property
    def records(self) -> list[dict]:
        return self.train + self.validation


def inspect(path: str | Path, options: PrepareOptions | None = None) -> formats.Detection:
    """The detected format of one file, with evidence and the fields seen (raises on unreadable files)."""
    rows = readers.iter_rows(Path(path), options or PrepareOptions())
    return formats.detect(list(itertools.islice(rows, formats.SAMPLE_ROWS)))


def prepare(inputs: Sequence[str | Path | Source], options: PrepareOptions | None = None,
            progress: Progress | None = None) -> Prepared:
    options = options or PrepareOptions()
    sources = _sources(inputs)
    kept, rejects, fixes, files, rows = [], [], Counter(), [], 0
    exact: set[bytes] = set()
    origins: dict[str, tuple[str, int]] = {}
    for index, source in enumerate(sources):
        if progress:
            progress(index, len(sources) + 1, f"reading {source.path.name}")
        if rows >= options.max_rows:
            raise BadInputError(f"The inputs hold more than {options.max_rows:,} rows (at {source.path.name}).",
                                "Use fewer files, or raise max_rows.")
        table = readers.iter_rows(source.path, options, allowed_rows=options.max_rows - rows)
        head = list(itertools.islice(table, formats.SAMPLE_ROWS))  # enough to detect; the rest streams
        format_, evidence = _format_of(source, head)
        files.append({"name": source.path.name, "source": source.name, "format": format_,
                      "evidence": evidence, "rows": 0})
        for line, raw in itertools.chain(head, table):
            rows += 1
            files[-1]["rows"] += 1
            record = _convert(source, format_, line, raw, options, rejects, fixes)
            if record is not None and _is_new(record, exact, options):
                kept.append(record)
                origins.setdefault(record["id"], (source.path.name, line))
            elif record is not None:
                rejects.append(Reject("duplicate", source.name, source.path.name, line,
                                      "same as an earlier conversation", raw))
    _check_drop_share(rows, rejects, options)
    if progress:
        progress(len(sources), len(sources) + 1, "removing near duplicates, measuring lengths")
    kept = _remove_near_duplicates(kept, options, rejects, origins)
    kept, lengths_, unit = _filter_length(kept, options, rejects, origins)
    kept = _apply_caps(kept, options, rejects, origins)
    train, validation = split(kept, options.validation_share, options.seed)
    summary = report.build(rows=rows, files=files, kept=kept, rejects=rejects, fixes=fixes,
                           lengths=lengths_, unit=unit,
                           histogram=lengths.histogram(lengths_, options.max_tokens),
                           train=len(train), validation=len(validation))
    return Prepared(train, validation, summary, options, rejects[:REJECTS_KEPT])


def _sources(inputs: Sequence[str | Path | Source]) -> list[Source]:
    if not inputs:
        raise BadInputError("No input files were given.", "Upload a file or type a path.")
    sources, names = [], Counter()
    for item in inputs:
        source = item if isinstance(item, Source) else Source(Path(item))
        names[source.name] += 1
        if names[source.name] > 1:  # two files called train.json must stay two sources
            source = Source(source.path, f"{source.name}-{names[source.name]}", source.format, source.mapping)
        sources.append(source)
    return sources


def _format_of(source: Source, table: list) -> tuple[str, str]:
    if source.mapping is not None and source.mapping.is_set:
        return source.mapping.format, "columns mapped by hand"
    if source.format:
        return source.format, "format chosen by hand"
    detection = formats.detect(table)
    if not detection.format:
        raise BadInputError(f"{source.path.name}: {detection.evidence}.",
                            "Map its columns in the Data tab, or pass --format / --map on the command line.")
    return detection.format, detection.evidence


def _convert(source: Source, format_: str, line: int, raw: Any, options: PrepareOptions,
             rejects: list, fixes: Counter) -> dict | None:
    try:
        turns, extra = formats.to_turns(raw, format_, source.mapping)
        messages, made = clean.clean(turns, options)
    except formats.RowError as error:
        rejects.append(Reject(error.reason, source.name, source.path.name, line, error.detail, raw))
        return None
    fixes.update(made)
    return {"id": dedupe.record_id(messages, extra.get("tools")), "source": source.name,
            "messages": messages, **extra}


def _is_new(record: dict, exact: set, options: PrepareOptions) -> bool:
    if not options.exact_dedup:
        return True
    key = dedupe.exact_key(record["messages"])
    if key in exact:
        return False
    exact.add(key)
    return True


def _remove_near_duplicates(kept: list[dict], options: PrepareOptions, rejects: list, origins: dict) -> list:
    if not options.near_dup_threshold:
        return kept
    near = dedupe.NearDuplicates(options.near_dup_threshold)
    flags = near.flags([dedupe.comparable_text(record["messages"]) for record in kept])
    for record, flagged in zip(kept, flags):
        if flagged:
            rejects.append(Reject("near_duplicate", record["source"], *origins[record["id"]],
                                  f"at least {options.near_dup_threshold:.0%} similar to an earlier one", record))
    return [record for record, flagged in zip(kept, flags) if not flagged]


def _check_drop_share(rows: int, rejects: list, options: PrepareOptions) -> None:
    broken = Counter(r.reason for r in rejects if r.reason not in ("duplicate", "near_duplicate"))
    total = sum(broken.values())
    if rows and total / rows > options.max_drop_share:
        counts = ", ".join(f"{report.REASONS.get(k, k)} {n:,}" for k, n in broken.most_common(4))
        raise BadInputError(
            f"{total:,} of {rows:,} rows ({total / rows:.0%}) would be dropped, above the "
            f"{options.max_drop_share:.0%} limit: {counts}.",
            "Check the format and the column mapping, or raise the drop-share limit.")


def _filter_length(kept: list[dict], options: PrepareOptions, rejects: list,
                   origins: dict) -> tuple[list, list, str]:
    measured, unit = lengths.measure(kept, options.model)
    if not options.max_tokens:
        return kept, measured, unit
    short = []
    for record, length in zip(kept, measured):
        if length <= options.max_tokens:
            short.append(record)
        else:
            rejects.append(Reject("too_long", record["source"], *origins[record["id"]],
                                  f"{length:,} {unit} > {options.max_tokens:,}", record))
    return short, measured, unit


def _apply_caps(kept: list[dict], options: PrepareOptions, rejects: list, origins: dict) -> list[dict]:
    if not options.caps:
        return kept
    by_source: dict[str, list[int]] = {}
    for index, record in enumerate(kept):
        by_source.setdefault(record["source"], []).append(index)
    chosen = set()
    for name, indices in by_source.items():
        cap = options.caps.get(name)
        chosen.update(indices if cap is None or len(indices) <= cap
                      else random.Random(f"{options.seed}:{name}").sample(indices, cap))
    for index in sorted(set(range(len(kept))) - chosen):
        record = kept[index]
        rejects.append(Reject("over_cap", record["source"], *origins[record["id"]],
                              f"cap {options.caps[record['source']]:,}", record))
    return [record for index, record in enumerate(kept) if index in chosen]


def split(records: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded split stratified by source: each source gives the same share to validation."""
    held_out: set[int] = set()
    by_source: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_source.setdefault(record["source"], []).append(index)
    for name, indices in sorted(by_source.items()):
        count = round(len(indices) * share)
        if share and len(indices) >= 2:
            count = max(1, count)
        held_out.update(random.Random(f"{seed}:{name}").sample(indices, min(count, len(indices) - 1)))
    train = [r for i, r in enumerate(records) if i not in held_out]
    return train, [r for i, r in enumerate(records) if i in held_out]
