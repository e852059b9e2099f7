"""Read rows from JSON, JSONL, CSV, Parquet files and `datasets` folders, refusing bad input early.

Contract: `read_rows(path, options)` returns `[(line, row), ...]` where `line` is the 1-based line of
the file on which the row starts (its index for Parquet and `datasets` folders), and `row` is whatever
the file held there (normally a dict). It never modifies the file. It raises `BadInputError` naming the
file and line for broken JSON (D1), non-UTF-8 bytes (D4) and anything over the size limits (D5). A UTF-8
byte-order mark is ignored. It knows nothing about chat formats.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from core.data.options import PrepareOptions
from core.errors import BadInputError

Row = tuple[int, Any]
TEXT_SUFFIXES = {".json", ".jsonl", ".ndjson", ".csv", ".tsv"}
RECORD_KEYS = ("data", "train", "rows", "records", "examples", "conversations", "messages")


def read_rows(path: Path, options: PrepareOptions) -> list[Row]:
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{path} does not exist.", "Check the path, or upload the file in the Data tab.")
    if path.is_dir():
        rows = _read_datasets_folder(path)
    else:
        _check_size(path, options)
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            rows = _read_parquet(path, options)
        elif suffix in TEXT_SUFFIXES:
            rows = _read_text(path, suffix, _decode(path), options)
        else:
            raise BadInputError(f"{path.name}: unsupported file type {suffix or '(none)'}.",
                                "Use .json, .jsonl, .csv, .parquet or a folder saved with datasets.")
    if len(rows) > options.max_rows:
        raise BadInputError(f"{path.name} has {len(rows):,} rows; the limit is {options.max_rows:,}.",
                            "Split the file, or raise max_rows if this machine has the memory.")
    return rows


def _check_size(path: Path, options: PrepareOptions) -> None:
    size = path.stat().st_size
    if size > options.max_file_mb * 1024 * 1024:
        raise BadInputError(f"{path.name} is {size / 2**20:,.0f} MB; the limit is {options.max_file_mb:,} MB.",
                            "Split the file, or raise max_file_mb.")
    if size == 0:
        raise BadInputError(f"{path.name} is empty.", "Check that the upload or export finished.")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a byte-order mark must not change the result (D4)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BadInputError(
            f"{path.name} line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}).",
            "Re-save the file as UTF-8 (most editors: Save as… → Encoding: UTF-8).") from None


def _read_text(path: Path, suffix: str, text: str, options: PrepareOptions) -> list[Row]:
    if suffix in (".csv", ".tsv"):
        return _read_csv(path, text, "\t" if suffix == ".tsv" else ",", options)
    if suffix == ".json" and not text.lstrip().startswith(("[", "{")):
        suffix = ".jsonl"
    if suffix == ".json" and _looks_like_jsonl(text):
        suffix = ".jsonl"
    return _read_jsonl(path, text, options) if suffix != ".json" else _read_json(path, text, options)


def _looks_like_jsonl(text: str) -> bool:
    """A `.json` file that is really one object per line (common with exported datasets)."""
    first, _, rest = text.lstrip().partition("\n")
    if not first.startswith("{") or not rest.strip():
        return False
    try:
        json.loads(first)
        return True
    except ValueError:
        return False


def _read_jsonl(path: Path, text: str, options: PrepareOptions) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > options.max_record_chars:
            raise _oversized(path, number, len(line), options)
        try:
            rows.append((number, json.loads(line)))
        except ValueError as error:
            raise _broken(path, number, error) from None
    return rows


def _read_json(path: Path, text: str, options: PrepareOptions) -> list[Row]:
    start = len(text) - len(text.lstrip())
    if text[start] == "[":
        return _read_json_array(path, text, start + 1, options)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _broken(path, error.lineno, error) from None
    records = _records_inside(value)
    for index, record in enumerate(records, start=1):
        if len(json.dumps(record, ensure_ascii=False)) > options.max_record_chars:
            raise _oversized(path, index, None, options)
    return list(enumerate(records, start=1))


def _read_json_array(path: Path, text: str, position: int, options: PrepareOptions) -> list[Row]:
    """Decode an array element by element so every row knows the line it starts on."""
    decoder, rows, line, counted = json.JSONDecoder(), [], 1, 0
    while True:
        position = _skip(text, position, " \t\r\n,")
        if position >= len(text):
            raise _broken(path, text.count("\n") + 1, "the array is not closed with ]")
        if text[position] == "]":
            break
        line += text.count("\n", counted, position)
        counted = position
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise _broken(path, text.count("\n", 0, error.pos) + 1, error) from None
        if end - position > options.max_record_chars:
            raise _oversized(path, line, end - position, options)
        rows.append((line, value))
        position = end
    if text[position + 1:].strip():
        raise _broken(path, text.count("\n", 0, position) + 1, "extra data after the closing ]")
    return rows


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _records_inside(value: Any) -> list:
    """An object holding the records under a key such as "data" or "train", else one record."""
    if isinstance(value, dict):
        for key in (*RECORD_KEYS, *value):
            inner = value.get(key)
            if isinstance(inner, list) and inner and all(isinstance(item, dict) for item in inner):
                if key in ("conversations", "messages") and len(value) <= 3:
                    break  # a single ShareGPT/messages record, not a container
                return inner
        return [value]
    return [value]


def _read_csv(path: Path, text: str, delimiter: str, options: PrepareOptions) -> list[Row]:
    csv.field_size_limit(options.max_record_chars)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, line = [], 2
    try:
        for row in reader:
            rows.append((line, {key: value for key, value in row.items() if key is not None}))
            line = reader.line_num + 1
    except csv.Error as error:
        raise BadInputError(f"{path.name} line {reader.line_num}: {error}.",
                            f"Fields longer than {options.max_record_chars:,} characters are refused (max_record_chars).") from None
    return rows


def _read_parquet(path: Path, options: PrepareOptions) -> list[Row]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        if file.metadata.num_rows > options.max_rows:
            raise BadInputError(f"{path.name} has {file.metadata.num_rows:,} rows; the limit is "
                                f"{options.max_rows:,}.", "Split the file, or raise max_rows.")
        records = file.read().to_pylist()
    except BadInputError:
        raise
    except Exception as error:  # pyarrow raises its own types with long traces (D2)
        raise BadInputError(f"{path.name} is not a readable Parquet file ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:200]}).", "Export it again, or convert it to JSONL.") from None
    return list(enumerate(records, start=1))


def _read_datasets_folder(path: Path) -> list[Row]:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except Exception as error:
        raise BadInputError(f"{path} is not a folder written by datasets' save_to_disk ({error}).",
                            "Pick a data file, or the folder that holds dataset_info.json.") from None
    splits = [loaded] if isinstance(loaded, Dataset) else list(DatasetDict(loaded).values())
    records = [row for split in splits for row in split.to_list()]
    return list(enumerate(records, start=1))


def _broken(path: Path, line: int, error: Any) -> BadInputError:
    reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
    return BadInputError(f"{path.name} line {line}: broken JSON ({reason}).",
                         "Fix that line (a missing comma, quote or bracket is typical) and run again.")


def _oversized(path: Path, line: int, size: int | None, options: PrepareOptions) -> BadInputError:
    what = f" ({size:,} characters)" if size else ""
    return BadInputError(
        f"{path.name} line {line}: the record is too large{what}; the limit is "
        f"{options.max_record_chars:,} characters.", "Remove or split it, or raise max_record_chars.")
