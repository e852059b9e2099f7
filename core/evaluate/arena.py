"""Blind battles and their votes, held server-side in one SQLite database (docs/reliability.md, "Ratings")

A battle is created by the server: it draws two contenders, randomises which one is shown as A, and
records the prompt, answers and settings. The browser only ever holds the battle id; a vote names the
battle and a side ("a", "b", "tie", "both_bad"), and the server's record decides which models that
means, whatever the client claims. Model names are revealed only for battles that have a vote.

Integrity: WAL mode and a busy timeout let many threads write without "database is locked"; one
vote per battle and a unique idempotency key make a replayed vote a no-op, and a key reused on
another battle is refused, not dropped; a rater who votes faster than a person can read is refused and
flagged, and a flagged rater's votes leave the leaderboard. The database is the workspace's, so an
app restart loses nothing; with `vote_log` set, each accepted vote is also appended to a JSONL file, the
append-only copy a Space would push to a Hub dataset, and a rater's flag is appended there too;
`import_log` reads such lines back into a fresh database, adding only the votes it lacks
(`core.evaluate.hub_votes` restores a Space from its dataset); `export_jsonl` / `export_csv` write every
vote at once.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError
from core.evaluate import vote_log
from core.evaluate.ratings import WINNERS, Vote
from core.evaluate.vote_log import read_votes_file  # noqa: F401  (imported from here by the CLI and tests)

SCHEMA = """
CREATE TABLE IF NOT EXISTS battles (
    id TEXT PRIMARY KEY, created REAL NOT NULL, rater TEXT NOT NULL,
    model_a TEXT NOT NULL, model_b TEXT NOT NULL, prompt TEXT NOT NULL,
    answer_a TEXT NOT NULL DEFAULT '', answer_b TEXT NOT NULL DEFAULT '', answered REAL,
    settings TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS votes (
    battle_id TEXT PRIMARY KEY REFERENCES battles(id), winner TEXT NOT NULL, rater TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS flagged_raters (rater TEXT PRIMARY KEY, reason TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS votes_by_rater ON votes (rater, created);
"""


@dataclass(frozen=True)
class RateLimit:
    """How fast one rater may vote. `from_env` reads `CHATSMITH_MAX_VOTES` and `CHATSMITH_VOTE_WINDOW_S`."""

    max_votes: int = 8
    """Votes a rater may cast within `window_s`; more is faster than anyone reads two answers."""
    window_s: float = 30.0
    """The sliding window, in seconds, over which `max_votes` is counted."""

    @classmethod
    def from_env(cls) -> "RateLimit":
        return cls(int(os.environ.get("CHATSMITH_MAX_VOTES", cls.max_votes)),
                   float(os.environ.get("CHATSMITH_VOTE_WINDOW_S", cls.window_s)))


class RateLimitedError(BadInputError):
    """A rater voted faster than the rate limit allows; `reason` is what the flag records."""

    def __init__(self, message: str, hint: str = "", reason: str = "") -> None:
        super().__init__(message, hint)
        self.reason = reason


@dataclass(frozen=True)
class ImportCount:
    """What `Arena.import_log` did with the lines it was given."""

    added: int = 0
    """Votes (and rater flags) the database did not hold yet."""
    present: int = 0
    """Votes already there (same battle or idempotency key), left untouched."""
    malformed: int = 0
    """Lines that were not a complete vote or flag record; skipped."""


class Arena:
    """Battles and votes in `db_path`. Safe to share between threads: each call opens its own connection."""

    def __init__(self, db_path: Path, rate_limit: RateLimit | None = RateLimit(), vote_log: Path | None = None):
        self.db_path = Path(db_path)
        self.rate_limit = rate_limit
        self.vote_log = Path(vote_log) if vote_log else None
        """An append-only JSONL of accepted votes, for a Space to push to a Hub dataset."""
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.set_aside: Path | None = None
        """Where a corrupt database was moved (kept, never deleted) before a fresh one was started."""
        try:
            self._create()
        except sqlite3.DatabaseError:  # "file is not a database": the app must still start
            self.set_aside = self.db_path.with_name(f"{self.db_path.name}.corrupt-{int(time.time())}")
            os.replace(self.db_path, self.set_aside)
            self._create()

    def _create(self) -> None:
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        # In WAL mode NORMAL survives an app crash or restart; only a power cut can drop the latest
        # commits, and it spares an fsync per vote.
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    def new_battle(self, contenders: list[str], messages: list[dict], rater: str,
                   settings: dict | None = None, rng: random.Random | None = None) -> str:
        """Draw two different contenders, in random order, and record the battle; returns its id."""
        if len(set(contenders)) < 2:
            raise BadInputError("A battle needs at least two different models.", "Pick two or more contenders.")
        model_a, model_b = (rng or random.SystemRandom()).sample(sorted(set(contenders)), 2)
        battle_id = uuid.uuid4().hex
        with self._connect() as db:
            db.execute("INSERT INTO battles (id, created, rater, model_a, model_b, prompt, settings) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (battle_id, time.time(), rater, model_a, model_b, json.dumps(messages, ensure_ascii=False),
                        json.dumps(settings or {})))
        return battle_id

    def contenders_of(self, battle_id: str) -> tuple[str, str]:
        """Server-side only: which models sit behind A and B (used to generate, never sent to the page)."""
        row = self._battle(battle_id)
        return row["model_a"], row["model_b"]

    def save_answers(self, battle_id: str, answer_a: str, answer_b: str) -> None:
        """Record both finished answers; only then does the battle accept a vote."""
        with self._connect() as db:
            db.execute("UPDATE battles SET answer_a = ?, answer_b = ?, answered = ? WHERE id = ?",
                       (answer_a, answer_b, time.time(), battle_id))

    def public_view(self, battle_id: str) -> dict:
        """What the page may see: names only once the battle has a vote."""
        row, vote = self._battle(battle_id), self._vote(battle_id)
        view = {"battle_id": battle_id, "prompt": json.loads(row["prompt"]), "answer_a": row["answer_a"],
                "answer_b": row["answer_b"], "winner": vote["winner"] if vote else None}
        if vote:
            view.update(model_a=row["model_a"], model_b=row["model_b"])
        return view

    def vote(self, battle_id: str, winner: str, rater: str, idempotency_key: str) -> dict:
        """Record a vote once; a replay with the same key returns the first vote unchanged."""
        if winner not in WINNERS:
            raise BadInputError(f"Unknown vote '{winner}'.", f"Use one of: {', '.join(WINNERS)}.")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")  # take the write lock first: the checks and insert are one step
            try:
                result = self._vote_locked(db, battle_id, winner, rater, idempotency_key)
                if self.vote_log and "replayed" not in result:
                    self._append_to_log(db, result)  # inside the write lock: log order = commit order
                db.execute("COMMIT")
                return result
            except RateLimitedError as error:
                db.execute("ROLLBACK")
                flag = {"flagged": True, "rater": rater, "reason": error.reason, "created": time.time()}
                newly = db.execute("INSERT OR IGNORE INTO flagged_raters VALUES (?, ?, ?)",
                                   (rater, error.reason, flag["created"])).rowcount
                if self.vote_log and newly:  # a restored database must leave these votes out too
                    self._write_log_line(flag)
                raise
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _vote_locked(self, db, battle_id: str, winner: str, rater: str, key: str) -> dict:
        replay = db.execute("SELECT * FROM votes WHERE idempotency_key = ?", (key,)).fetchone()
        if replay and replay["battle_id"] != battle_id:  # a key names one vote; reusing it is a client bug
            raise BadInputError("That vote's idempotency key was already used for another battle, so this vote "
                                "was not recorded.", "Send each vote with a fresh key.")
        if replay:
            return {**dict(replay), "replayed": True}
        battle = db.execute("SELECT * FROM battles WHERE id = ?", (battle_id,)).fetchone()
        if battle is None:
            raise BadInputError("That battle does not exist.", "Start a new battle.")
        if battle["rater"] != rater:
            raise BadInputError("That battle belongs to another rater.", "Start a new battle.")
        if db.execute("SELECT 1 FROM votes WHERE battle_id = ?", (battle_id,)).fetchone():
            raise BadInputError("This battle already has a vote.", "Start a new battle.")
        if battle["answered"] is None:  # the page greys the buttons out; this holds for scripted clients too
            raise BadInputError("Both answers must finish before the vote.", "Wait for them, then vote.")
        self._check_rate(db, rater)
        now = time.time()
        db.execute("INSERT INTO votes (battle_id, winner, rater, idempotency_key, created) VALUES (?, ?, ?, ?, ?)",
                   (battle_id, winner, rater, key, now))
        return {"battle_id": battle_id, "winner": winner, "rater": rater, "idempotency_key": key, "created": now}

    def _append_to_log(self, db, vote: dict) -> None:
        # Appending whole lines is the one write here that does not go through core.atomic: earlier
        # lines are never touched, and the SQLite database stays the source of truth if a line tears.
        battle = db.execute("SELECT model_a, model_b FROM battles WHERE id = ?", (vote["battle_id"],)).fetchone()
        self._write_log_line({"battle_id": vote["battle_id"], "model_a": battle["model_a"],
                              "model_b": battle["model_b"], "winner": vote["winner"], "rater": vote["rater"],
                              "created": vote["created"], "idempotency_key": vote["idempotency_key"]})

    def _write_log_line(self, line: dict) -> None:
        self.vote_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.vote_log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")

    def import_log(self, lines: Iterable[str]) -> ImportCount:
        """Add the votes and flags of vote-log lines that this database lacks; replaying the same lines adds
        nothing (the battle id and idempotency key are unique). Incomplete lines are skipped and counted.
        Imported votes bypass the rate limit (they were checked when cast) and are not logged again."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                counts = vote_log.import_lines(db, lines)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return ImportCount(*counts)

    def _check_rate(self, db, rater: str) -> None:
        if self.rate_limit is None:
            return
        since = time.time() - self.rate_limit.window_s
        recent = db.execute("SELECT COUNT(*) FROM votes WHERE rater = ? AND created > ?", (rater, since)).fetchone()[0]
        if recent >= self.rate_limit.max_votes:
            reason = f"more than {self.rate_limit.max_votes} votes in {self.rate_limit.window_s:.0f} s"
            raise RateLimitedError(f"Too many votes too fast ({reason}); this rater is flagged for review.",
                                   "Read both answers before voting.", reason=reason)

    def flagged_raters(self) -> dict[str, str]:
        with self._connect() as db:
            return {row["rater"]: row["reason"] for row in db.execute("SELECT * FROM flagged_raters")}

    def vote_count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM votes").fetchone()[0]

    def records(self) -> list[dict]:
        """Every voted battle, oldest vote first, with the server's model names."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT b.id AS battle_id, b.model_a, b.model_b, v.winner, v.rater, v.created, b.prompt, "
                "b.answer_a, b.answer_b, b.settings, (f.rater IS NOT NULL) AS flagged FROM votes v "
                "JOIN battles b ON b.id = v.battle_id LEFT JOIN flagged_raters f ON f.rater = v.rater "
                "ORDER BY v.created, v.rowid").fetchall()
        return [dict(row) for row in rows]

    def votes(self, include_flagged: bool = False) -> list[Vote]:
        return [Vote(r["model_a"], r["model_b"], r["winner"], r["rater"]) for r in self.records()
                if include_flagged or not r["flagged"]]

    def export_jsonl(self, path: Path) -> Path:
        """All votes, one JSON object a line, in the `leaderboard --votes` format (plus the battle)."""
        return vote_log.export_jsonl(self.records(), path)

    def export_csv(self, path: Path) -> Path:
        return vote_log.export_csv(self.records(), path)

    def _battle(self, battle_id: str) -> sqlite3.Row:
        with self._connect() as db:
            row = db.execute("SELECT * FROM battles WHERE id = ?", (str(battle_id),)).fetchone()
        if row is None:
            raise BadInputError("That battle does not exist.", "Start a new battle.")
        return row

    def _vote(self, battle_id: str) -> sqlite3.Row | None:
        with self._connect() as db:
            return db.execute("SELECT * FROM votes WHERE battle_id = ?", (battle_id,)).fetchone()
