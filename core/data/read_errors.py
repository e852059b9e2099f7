"""The errors the Data stage's readers raise: each names the file and the line, and says what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.data.options import PrepareOptions
from core.errors import BadInputError


def broken(path: Path, line: int, error: Any) -> BadInputError:
    reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
    return BadInputError(f"{path.name} line {line}: broken JSON ({reason}).",
                         "Fix that line (a missing comma, quote or bracket is typical) and run again.")


def not_utf8(path: Path, line: int, error: UnicodeDecodeError) -> BadInputError:
    return BadInputError(f"{path.name} line {line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}).",
                         "Re-save the file as UTF-8 (most editors: Save as… → Encoding: UTF-8).")


def too_deep(path: Path, line: int) -> BadInputError:
    return BadInputError(f"{path.name} line {line}: the JSON is nested too deeply to read (brackets inside "
                         "brackets, hundreds of levels down).",
                         "No chat record nests like that: check that this is the file you meant.")


def oversized(path: Path, line: int, size: int | None, options: PrepareOptions,
               unit: str = "characters") -> BadInputError:
    what = f" ({size:,} {unit})" if size else ""
    return BadInputError(
        f"{path.name} line {line}: the record is too large{what}; the limit is "
        f"{options.max_record_chars:,} characters.", "Remove or split it, or raise max_record_chars.")
