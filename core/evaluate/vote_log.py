"""The arena's votes as lines of JSON or CSV: reading a vote log back, exporting every vote, reading a votes file.

Contract: `import_lines` adds to an open SQLite transaction of `core.evaluate.arena` the votes and rater
flags of vote-log lines that the database lacks, and returns (added, present, malformed); a line that is
not a complete vote or flag record is skipped and counted, never half-imported. `export_jsonl` and
`export_csv` write the arena's records atomically; `read_votes_file` reads the `leaderboard --votes` format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

from core import atomic
from core.errors import BadInputError
from core.evaluate.ratings import WINNERS, Vote

CSV_FIELDS = ["battle_id", "model_a", "model_b", "winner", "rater", "created", "flagged"]


def import_lines(db, lines: Iterable[str]) -> tuple[int, int, int]:
    """(added, present, malformed) for `lines` imported into `db`, inside the caller's transaction."""
    added = present = malformed = 0
    for line in lines:
        record = _log_record(line)
        if record is None:
            malformed += line.strip() != ""
            continue
        if record.get("flagged"):
            changed = db.execute("INSERT OR IGNORE INTO flagged_raters VALUES (?, ?, ?)",
                                 (record["rater"], record["reason"], record["created"])).rowcount
        else:
            changed = _insert_logged_vote(db, record)
        added += changed
        present += not changed
    return added, present, malformed


def export_jsonl(records: list[dict], path: Path) -> Path:
    return atomic.write_jsonl(path, (_export_row(record) for record in records))


def export_csv(records: list[dict], path: Path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(records)
    return atomic.write_text(path, buffer.getvalue())


def _log_record(line: str) -> dict | None:
    """A vote-log line as a complete vote or flag record, or None when anything is missing or wrong."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not _text(record.get("rater")):
        return None
    if not isinstance(record.get("created"), (int, float)) or isinstance(record["created"], bool):
        return None
    if record.get("flagged") is True:
        return record if _text(record.get("reason")) else None
    complete = (_text(record.get("battle_id")) and _text(record.get("model_a")) and _text(record.get("model_b"))
                and record["model_a"] != record["model_b"] and record.get("winner") in WINNERS)
    return record if complete and isinstance(record.get("idempotency_key", ""), str) else None


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _insert_logged_vote(db, record: dict) -> int:
    """Insert one logged vote and, if missing, its battle (prompt and answers are not in the log); 1 if added."""
    if db.execute("SELECT 1 FROM votes WHERE battle_id = ?", (record["battle_id"],)).fetchone():
        return 0
    created, key = record["created"], str(record.get("idempotency_key") or f"restored:{record['battle_id']}")
    db.execute("INSERT OR IGNORE INTO battles (id, created, rater, model_a, model_b, prompt, answered) "
               "VALUES (?, ?, ?, ?, ?, '[]', ?)",
               (record["battle_id"], created, record["rater"], record["model_a"], record["model_b"], created))
    return db.execute("INSERT OR IGNORE INTO votes (battle_id, winner, rater, idempotency_key, created) "
                      "VALUES (?, ?, ?, ?, ?)", (record["battle_id"], record["winner"], record["rater"], key,
                                                 created)).rowcount


def _export_row(record: dict) -> dict:
    row = {key: record[key] for key in ("battle_id", "model_a", "model_b", "winner", "rater", "created")}
    row.update(flagged=bool(record["flagged"]), prompt=json.loads(record["prompt"]),
               answer_a=record["answer_a"], answer_b=record["answer_b"])
    return row


def read_votes_file(path: Path) -> list[Vote]:
    """Votes from a JSONL file (`model_a`, `model_b`, `winner`, optional `rater`); flagged lines skipped."""
    votes = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not row.get("flagged"):
                votes.append(Vote(row["model_a"], row["model_b"], row["winner"], row.get("rater", "")))
        except (ValueError, KeyError, TypeError) as error:
            raise BadInputError(f"{path}, line {number}: not a vote ({error}).",
                                "Each line needs model_a, model_b and winner (a, b, tie or both_bad).") from error
    return votes
