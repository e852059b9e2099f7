"""Settings of the Data stage: what to read (`Source`, `ColumnMapping`) and how to clean (`PrepareOptions`).

Every field has the default a first-time user would pick; the tab reads its widget defaults from here
and the CLI its flag defaults. `__post_init__` refuses bad values with text the UI shows as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInputError

FORMATS = ("alpaca", "sharegpt", "ultrachat", "messages")
SAME_ROLE_CHOICES = ("merge", "drop")
ENDS_CHOICES = ("trim", "drop")


@dataclass(frozen=True)
class ColumnMapping:
    """Which fields hold what, for a file whose format was not detected (or was detected wrongly)."""

    instruction: str = ""
    """Alpaca-like: the field with the user's request."""
    input: str = ""
    """Alpaca-like: an optional field appended to the instruction."""
    output: str = ""
    """Alpaca-like: the field with the assistant's answer."""
    system: str = ""
    """Alpaca-like: an optional field with a system prompt."""
    messages: str = ""
    """Chat-like: the field holding the list of turns."""
    role: str = "role"
    """Chat-like: the key of a turn's speaker."""
    content: str = "content"
    """Chat-like: the key of a turn's text."""

    def __post_init__(self) -> None:
        if self.messages and self.instruction:
            raise BadInputError("Column mapping: choose either a messages field or instruction/output "
                                "fields, not both.", "Clear one of them.")
        if self.instruction and not self.output:
            raise BadInputError("Column mapping: an instruction field needs a response field too.",
                                "Pick the field that holds the answer.")

    @property
    def is_set(self) -> bool:
        return bool(self.messages or self.instruction)

    @property
    def format(self) -> str:
        return "messages" if self.messages else "alpaca"


@dataclass(frozen=True)
class Source:
    """One input: a file or a `datasets` folder, optionally forced to a format or mapped by hand."""

    path: Path
    """The file (JSON, JSONL, CSV, Parquet) or a folder written by `Dataset.save_to_disk`."""
    name: str = ""
    """Kept as `source` on every record; defaults to the file name without its suffix."""
    format: str = ""
    """Force one of alpaca, sharegpt, ultrachat, messages; empty = detect."""
    mapping: ColumnMapping | None = None
    """Used when set: the fields to read, instead of detection."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if not self.name:
            object.__setattr__(self, "name", self.path.name.split(".")[0] or self.path.name)
        if self.format and self.format not in FORMATS:
            raise BadInputError(f"Unknown format {self.format!r} for {self.path.name}.",
                                f"Use one of: {', '.join(FORMATS)}.")


@dataclass(frozen=True)
class PrepareOptions:
    """How raw rows become one clean dataset. Defaults are what most first fine-tunes want."""

    nfc: bool = True
    """Unicode NFC normalisation and trimming of whitespace at both ends of every turn."""
    html_to_text: bool = False
    """Strip HTML tags and entities (ShareGPT dumps scraped from web pages carry them)."""
    drop_empty_turns: bool = True
    """Remove turns with no text; when off, a conversation with an empty turn is dropped."""
    same_role: str = "merge"
    """Consecutive turns of one speaker: "merge" joins them with a blank line, "drop" drops the conversation."""
    ends: str = "trim"
    """A conversation must start with the user and end with the assistant: "trim" removes a leading
    assistant greeting or a trailing unanswered user turn, "drop" drops the conversation."""
    placeholders: dict[str, str] = field(default_factory=lambda: {"name": "Kestrel", "author": "Chatsmith"})
    """Values for `{{name}}`-style placeholders (identity data); an unfilled one drops its conversation."""
    exact_dedup: bool = True
    """Remove conversations equal after normalising case and whitespace; the first one is kept."""
    near_dup_threshold: float = 0.9
    """MinHash Jaccard similarity above which a later conversation counts as a near duplicate; 0 = off."""
    max_tokens: int = 2048
    """Conversations longer than this (in tokens of `model`'s tokenizer, chat template included) are dropped; 0 = no limit."""
    model: str = "default"
    """Whose tokenizer measures length: "default" (SmolLM2), a local model folder, or "" to estimate (chars / 4)."""
    caps: dict[str, int] = field(default_factory=dict)
    """Most conversations to keep per source name (mixing); sources not named are not capped."""
    validation_share: float = 0.05
    """Share of each source held out for validation (stratified by source)."""
    seed: int = 42
    """Seed of the split and of the caps' sampling, so the same input gives the same dataset."""
    max_drop_share: float = 0.8
    """Abort when more than this share of rows is dropped: the input is probably not what you think."""
    max_file_mb: int = 1024
    """Refuse files above this size before reading them (so a huge file never runs the app out of memory)."""
    max_record_chars: int = 200_000
    """Refuse a file holding a single record longer than this."""
    max_rows: int = 2_000_000
    """Refuse inputs with more rows than this, before memory runs out."""

    def __post_init__(self) -> None:
        _check(self.same_role in SAME_ROLE_CHOICES, "same_role", f"one of {SAME_ROLE_CHOICES}")
        _check(self.ends in ENDS_CHOICES, "ends", f"one of {ENDS_CHOICES}")
        _check(0.0 <= self.near_dup_threshold <= 1.0, "near_dup_threshold", "between 0 and 1")
        _check(0.0 <= self.validation_share < 1.0, "validation_share", "at least 0 and below 1")
        _check(0.0 < self.max_drop_share <= 1.0, "max_drop_share", "above 0 and at most 1")
        _check(self.max_tokens >= 0, "max_tokens", "0 (no limit) or more")
        _check(all(cap >= 0 for cap in self.caps.values()), "caps", "0 or more per source")
        for limit in ("max_file_mb", "max_record_chars", "max_rows"):
            _check(getattr(self, limit) > 0, limit, "above 0")

    def public(self) -> dict:
        """The settings that shaped a dataset, as saved in `dataset.json`."""
        from dataclasses import asdict

        return asdict(self)


@dataclass(frozen=True)
class UploadLimits:
    """How much anyone who can reach the page may store in the workspace's uploads/ folder.

    Gradio already caps each file (`CHATSMITH_MAX_UPLOAD`); these cap what accumulates. Each field can be
    set from the environment: `CHATSMITH_MAX_UPLOADS` and `CHATSMITH_UPLOAD_QUOTA_MB`.
    """

    max_files: int = 200
    """Most files kept in uploads/; a new upload beyond it is refused (re-sending a kept file is fine)."""
    quota_mb: int = 5 * 1024
    """Most megabytes uploads/ may hold; an upload that would pass it is refused before it is copied."""

    def __post_init__(self) -> None:
        _check(self.max_files > 0, "max_files", "above 0")
        _check(self.quota_mb > 0, "quota_mb", "above 0")

    @classmethod
    def from_env(cls) -> "UploadLimits":
        defaults = cls()
        try:
            return cls(max_files=int(os.environ.get("CHATSMITH_MAX_UPLOADS", defaults.max_files)),
                       quota_mb=int(os.environ.get("CHATSMITH_UPLOAD_QUOTA_MB", defaults.quota_mb)))
        except ValueError as error:
            raise BadInputError(f"CHATSMITH_MAX_UPLOADS / CHATSMITH_UPLOAD_QUOTA_MB must be whole numbers ({error}).",
                                "Fix the environment variable and restart.") from None


def _check(ok: bool, name: str, expected: str) -> None:
    if not ok:
        raise BadInputError(f"Data setting `{name}` must be {expected}.", "Change it and run again.")
