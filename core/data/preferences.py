"""Preference data: files, arena votes and chat feedback become one clean set of pairs and unpaired examples.

Contract: `prepare_preferences(files, options, extra=..., skip_bad_rows=False)` reads preference files
(formats in `core.data.preference_formats`) and takes already-collected examples from the arena or the chat
(`core.data.preference_sources`), cleans them with the conversation cleaner, drops exact and near
duplicates and over-long ones, splits both kinds by source and returns a `PreparedPreferences`; it writes
nothing. A bad row in a file (chosen equal to rejected, an empty answer, a pair whose prompts differ, a
broken field) raises `BadInputError` naming the file and line, unless `skip_bad_rows` is set: then it is
dropped and listed in the report with its file and line, as conversation drops are. Examples from the
arena or the chat are never refused; a bad one (an empty answer from a failed generation) is dropped
and reported.

Canonical records, TRL's conversational preference format plus where each came from:

* pair: `{"id", "source", "prompt": [turns], "chosen": [assistant turn], "rejected": [assistant turn], "origin"}`
* unpaired (KTO): `{"id", "source", "prompt": [turns], "completion": [assistant turn], "label": bool, "origin"}`

`origin` is `{"file", "line"}`, `{"battle_id", "model_chosen", "model_rejected", "rater"}` (or `"model"` for
an undesirable answer) or `{"feedback_id", "model", "rating"}`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.data import clean, dedupe, lengths, preference_formats, readers
from core.data.formats import RowError
from core.data.options import PrepareOptions
from core.data.pipeline import split
from core.errors import BadInputError

REASONS = {
    "same_answers": "chosen and rejected are the same answer",
    "empty_completion": "an empty answer",
    "prompts_differ": "chosen and rejected answer different prompts",
    "no_prompt": "no prompt",
    "no_answer": "no assistant answer",
    "prompt_ends_with_assistant": "the prompt does not end with the user",
    "bad_label": "a label that is neither true nor false",
    "too_long": "longer than the token limit",
    "duplicate": "exact duplicate",
    "near_duplicate": "near duplicate",
}
EXAMPLES_PER_REASON = 3
DEFAULTS = PrepareOptions(near_dup_threshold=0.0, validation_share=0.1)
"""Near duplicates are off for preferences: two votes on one prompt whose answers differ by a few words are
two signals, not one. A tenth is held out, so the held-out preference accuracy rests on more than a pair."""


@dataclass(frozen=True)
class Collected:
    """One example gathered outside a file (an arena vote, a chat rating), before cleaning."""

    source: str
    origin: dict
    example: tuple
    """("pair", prompt turns, chosen, rejected) or ("unpaired", prompt turns, completion, label)."""


@dataclass
class PreparedPreferences:
    train: list[dict]
    validation: list[dict]
    unpaired_train: list[dict]
    unpaired_validation: list[dict]
    report: dict
    options: PrepareOptions
    rejects: list[dict] = field(default_factory=list)

    @property
    def records(self) -> list[dict]:
        return self.train + self.validation + self.unpaired_train + self.unpaired_validation


def prepare_preferences(files: Sequence[str | Path] = (), options: PrepareOptions | None = None,
                        extra: Sequence[Collected] = (), skip_bad_rows: bool = False,
                        counts: dict | None = None) -> PreparedPreferences:
    """`counts` carries what the collectors counted but did not return (ties, flagged raters) into the report."""
    options = options or DEFAULTS
    if not files and not extra:
        raise BadInputError("There is no preference data: no file, no vote and no chat rating was given.",
                            "Vote in the arena, rate chat answers, or add a preference file.")
    kept, rejects, files_seen, keys = [], [], [], set()
    for path in map(Path, files):
        rows = readers.read_rows(path, options)
        format_, evidence = preference_formats.detect(rows)
        if not format_:
            raise BadInputError(f"{path.name}: {evidence}.", "Use one of the preference formats the Data tab lists.")
        files_seen.append({"name": path.name, "format": format_, "evidence": evidence, "rows": len(rows)})
        source = path.name.split(".")[0] or path.name
        for line, raw in rows:
            origin = {"file": path.name, "line": line}
            try:
                _keep(_record(source, origin, preference_formats.to_example(raw), options), kept, keys,
                      rejects, options)
            except RowError as error:
                if not skip_bad_rows:
                    raise BadInputError(f"{path.name} line {line}: {error.detail}.",
                                        "Fix or remove that row, or tick 'skip bad rows' to drop such rows "
                                        "and list them in the report.") from None
                rejects.append(_reject(error.reason, origin, error.detail))
    for item in extra:
        try:
            _keep(_record(item.source, item.origin, item.example, options), kept, keys, rejects, options)
        except RowError as error:
            rejects.append(_reject(error.reason, item.origin, error.detail))
    kept = _remove_near_duplicates(kept, options, rejects)
    kept, measured, unit = _filter_length(kept, options, rejects)
    pairs = [r for r in kept if "chosen" in r]
    unpaired = [r for r in kept if "completion" in r]
    train, validation = split(pairs, options.validation_share, options.seed)
    unpaired_train, unpaired_validation = split(unpaired, options.validation_share, options.seed)
    report = build_report(files_seen, kept, rejects, measured, unit, counts or {},
                          (len(train), len(validation), len(unpaired_train), len(unpaired_validation)))
    return PreparedPreferences(train, validation, unpaired_train, unpaired_validation, report, options, rejects)


def _record(source: str, origin: dict, example: tuple, options: PrepareOptions) -> dict:
    kind, prompt, *answers = example
    if prompt and prompt[-1]["role"] != "user":
        raise RowError("prompt_ends_with_assistant", "the prompt's last turn is not the user's")
    texts = answers[:2] if kind == "pair" else answers[:1]
    cleaned = [_clean(prompt, text, options) for text in texts]
    prompt = cleaned[0][0]
    if kind == "unpaired":
        return {"id": dedupe.record_id(prompt + [cleaned[0][1]]), "source": source, "prompt": prompt,
                "completion": [cleaned[0][1]], "label": bool(answers[1]), "origin": origin}
    chosen, rejected = cleaned[0][1], cleaned[1][1]
    if dedupe.exact_key([chosen]) == dedupe.exact_key([rejected]):
        raise RowError("same_answers", "chosen and rejected are the same answer")
    return {"id": dedupe.record_id(prompt + [chosen, {"role": "rejected", "content": rejected["content"]}]),
            "source": source, "prompt": prompt, "chosen": [chosen], "rejected": [rejected], "origin": origin}


def _clean(prompt: list[dict], answer: str, options: PrepareOptions) -> tuple[list[dict], dict]:
    """The prompt and one answer through the conversation cleaner (NFC, placeholders, HTML, order)."""
    if not isinstance(answer, str) or not answer.strip():
        raise RowError("empty_completion", "an answer is empty")
    turns, _ = clean.clean([*prompt, {"role": "assistant", "content": answer}], options)
    if len(turns) < 2 or turns[-2]["role"] != "user":
        raise RowError("no_prompt", "no user turn comes before the answer")
    return turns[:-1], turns[-1]


def _keep(record: dict, kept: list, keys: set, rejects: list, options: PrepareOptions) -> None:
    key = dedupe.exact_key(_as_messages(record))
    if options.exact_dedup and key in keys:
        rejects.append(_reject("duplicate", record["origin"], "same as an earlier example"))
        return
    keys.add(key)
    kept.append(record)


def _as_messages(record: dict) -> list[dict]:
    """A record as one message list, the rejected answer or the label under a role of its own, for dedupe."""
    if "chosen" in record:
        return [*record["prompt"], *record["chosen"], {"role": "rejected", "content": record["rejected"][0]["content"]}]
    return [*record["prompt"], *record["completion"], {"role": "label", "content": str(record["label"])}]


def _remove_near_duplicates(kept: list[dict], options: PrepareOptions, rejects: list) -> list[dict]:
    if not options.near_dup_threshold or not kept:
        return kept
    texts = [dedupe.comparable_text(_as_messages(record)) for record in kept]
    flags = dedupe.NearDuplicates(options.near_dup_threshold).flags(texts)
    for record, flagged in zip(kept, flags):
        if flagged:
            rejects.append(_reject("near_duplicate", record["origin"],
                                   f"at least {options.near_dup_threshold:.0%} similar to an earlier one"))
    return [record for record, flagged in zip(kept, flags) if not flagged]


def _filter_length(kept: list[dict], options: PrepareOptions, rejects: list) -> tuple[list, list, str]:
    """Each record's length is its longest answer with the prompt, in the model's chat template."""
    answers = [r.get("chosen", []) + r.get("rejected", []) + r.get("completion", []) for r in kept]
    flat = [{"messages": record["prompt"] + [answer]} for record, own in zip(kept, answers) for answer in own]
    measured, unit = lengths.measure(flat, options.model)
    longest, position = [], 0
    for own in answers:
        longest.append(max(measured[position:position + len(own)]))
        position += len(own)
    if not options.max_tokens:
        return kept, longest, unit
    short = []
    for record, length in zip(kept, longest):
        if length <= options.max_tokens:
            short.append(record)
        else:
            rejects.append(_reject("too_long", record["origin"], f"{length:,} {unit} > {options.max_tokens:,}"))
    return short, [n for n in longest if n <= options.max_tokens], unit


def _reject(reason: str, origin: dict, detail: str) -> dict:
    return {"reason": reason, "where": where(origin), "detail": detail, "origin": origin}


def where(origin: dict) -> str:
    """Where an example came from, in words: `file.jsonl:3`, `battle 1a2b3c4d`, `chat rating 5e6f7a8b`."""
    if "file" in origin:
        return f"{origin['file']}:{origin['line']}"
    if "battle_id" in origin:
        return f"battle {str(origin['battle_id'])[:8]}"
    return f"chat rating {str(origin.get('feedback_id', '?'))[:8]}"


def build_report(files: list[dict], kept: list[dict], rejects: list[dict], measured: list[int], unit: str,
                 counts: dict, splits: tuple[int, int, int, int]) -> dict:
    reasons = Counter(reject["reason"] for reject in rejects)
    examples: dict[str, list] = {}
    for reject in rejects:
        bucket = examples.setdefault(reject["reason"], [])
        if len(bucket) < EXAMPLES_PER_REASON:
            bucket.append({"where": reject["where"], "detail": reject["detail"]})
    unpaired = [r for r in kept if "completion" in r]
    return {
        "kind": "preferences", "pairs": len(kept) - len(unpaired), "unpaired": len(unpaired),
        "desirable": sum(r["label"] for r in unpaired), "undesirable": sum(not r["label"] for r in unpaired),
        "duplicates": reasons.pop("duplicate", 0), "near_duplicates": reasons.pop("near_duplicate", 0),
        "dropped": dict(reasons.most_common()), "examples": examples, "files": files,
        "sources": dict(Counter(r["source"] for r in kept)), "collected": counts,
        "splits": dict(zip(("train", "validation", "unpaired_train", "unpaired_validation"), splits)),
        "length": {"unit": unit, "max": max(measured, default=0),
                   "median": sorted(measured)[len(measured) // 2] if measured else 0},
    }


def to_markdown(report: dict) -> str:
    splits = report["splits"]
    lines = [f"**{report['pairs']:,} pairs** (train {splits['train']:,} · validation {splits['validation']:,}) and "
             f"**{report['unpaired']:,} unpaired answers** ({report['desirable']:,} good, {report['undesirable']:,} "
             f"bad; train {splits['unpaired_train']:,} · validation {splits['unpaired_validation']:,}); "
             f"{report['duplicates']:,} exact and {report['near_duplicates']:,} near duplicates removed.", ""]
    if report["files"]:
        lines += ["| file | format | rows | evidence |", "|---|---|---|---|"]
        lines += [f"| {f['name']} | {f['format']} | {f['rows']:,} | {f['evidence']} |" for f in report["files"]]
        lines.append("")
    lines += ["| source | kept |", "|---|---|"] + [f"| {name} | {n:,} |" for name, n in report["sources"].items()]
    if report["collected"]:
        lines += ["", "Collected: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report["collected"].items())]
    if report["dropped"]:
        lines += ["", "| dropped because | count | examples (where — why) |", "|---|---|---|"]
        for reason, count in report["dropped"].items():
            shown = "; ".join(f"{e['where']} — {e['detail']}" for e in report["examples"].get(reason, []))
            lines.append(f"| {REASONS.get(reason, reason)} | {count:,} | {shown.replace('|', '/')[:400]} |")
    length = report["length"]
    lines += ["", f"Longest answer with its prompt, in {length['unit']}: median {length['median']:,}, "
                  f"max {length['max']:,}."]
    return "\n".join(lines) + "\n"
