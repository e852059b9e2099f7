"""The report of one preparation: counts a person can check, with examples of every drop.

Contract: `build(...)` returns the dict saved as `report.json` (keys `kept`, `dropped` {reason: count},
`duplicates`, `near_duplicates`, `sources` {name: count}, plus `files`, `examples`, `fixes`, `roles`,
`turns`, `length`, `splits`); `to_markdown(report)` renders it for people. Nothing here reads files.
"""

from __future__ import annotations

from collections import Counter

EXAMPLES_PER_REASON = 3
REASONS = {
    "not_a_record": "row is not an object",
    "other_format": "row in another format than its file (mixed formats)",
    "missing_field": "a required field is missing",
    "bad_field_type": "a field has the wrong type",
    "unknown_role": "unknown or missing role",
    "empty_turn": "empty turn",
    "same_role_turns": "two turns of one speaker in a row",
    "starts_with_assistant": "does not start with the user",
    "ends_without_assistant": "does not end with the assistant",
    "not_alternating": "turns do not alternate",
    "no_assistant": "no assistant turn",
    "unfilled_placeholder": "placeholder with no value",
    "too_long": "longer than the token limit",
    "over_cap": "over its source's cap",
    "duplicate": "exact duplicate",
    "near_duplicate": "near duplicate",
}


def build(*, rows: int, files: list[dict], kept: list[dict], rejects: list, fixes: Counter,
          lengths: list[int], unit: str, histogram: dict, train: int, validation: int) -> dict:
    reasons = Counter(reject.reason for reject in rejects)
    duplicates, near = reasons.pop("duplicate", 0), reasons.pop("near_duplicate", 0)
    examples: dict[str, list] = {}
    for reject in rejects:
        bucket = examples.setdefault(reject.reason, [])
        if len(bucket) < EXAMPLES_PER_REASON:
            bucket.append({"file": reject.file, "line": reject.line, "detail": reject.detail})
    return {
        "rows": rows,
        "kept": len(kept),
        "dropped": dict(reasons.most_common()),
        "duplicates": duplicates,
        "near_duplicates": near,
        "sources": dict(Counter(record["source"] for record in kept)),
        "splits": {"train": train, "validation": validation},
        "files": files,
        "examples": examples,
        "fixes": dict(fixes.most_common()),
        "roles": dict(Counter(m["role"] for record in kept for m in record["messages"])),
        "turns": dict(sorted(Counter(len(record["messages"]) for record in kept).items())),
        "length": {"unit": unit, "max": max(lengths, default=0),
                   "median": sorted(lengths)[len(lengths) // 2] if lengths else 0, "histogram": histogram},
    }


def to_markdown(report: dict) -> str:
    lines = [f"**{report['kept']:,} conversations kept** of {report['rows']:,} rows "
             f"(train {report['splits']['train']:,} · validation {report['splits']['validation']:,}); "
             f"{report['duplicates']:,} exact and {report['near_duplicates']:,} near duplicates removed.", ""]
    lines += ["| file | format | rows | evidence |", "|---|---|---|---|"]
    lines += [f"| {f['name']} | {f['format'] or '?'} | {f['rows']:,} | {f['evidence']} |" for f in report["files"]]
    lines += ["", "| source | kept |", "|---|---|"]
    lines += [f"| {name} | {count:,} |" for name, count in report["sources"].items()]
    if report["dropped"]:
        lines += ["", "| dropped because | count | examples (file:line — why) |", "|---|---|---|"]
        for reason, count in report["dropped"].items():
            shown = "; ".join(f"{e['file']}:{e['line']} — {e['detail']}" for e in report["examples"].get(reason, []))
            lines.append(f"| {REASONS.get(reason, reason)} | {count:,} | {_cell(shown)} |")
    if report["fixes"]:
        lines += ["", "Repaired (kept): " + ", ".join(f"{name.replace('_', ' ')} ×{n:,}"
                                                   for name, n in report["fixes"].items())]
    length = report["length"]
    lines += ["", f"Roles: {_pairs(report['roles'])}. Turns per conversation: {_pairs(report['turns'])}.",
              f"Length in {length['unit']}: median {length['median']:,}, max {length['max']:,}, "
              f"cutoff {length['histogram']['cutoff'] or 'none'}."]
    return "\n".join(lines) + "\n"


def _pairs(counts: dict) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in counts.items()) or "none"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:400]
