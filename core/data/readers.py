"""Read rows from JSON, JSONL, CSV, Parquet files and `datasets` folders, refusing bad input early.

Contract: `iter_rows(path, options)` yields `(line, row)` one at a time, where `line` is the 1-based line
of the file on which the row starts (its index for Parquet and `datasets` folders) and `row` is whatever
the file held there (normally a dict); `read_rows` is the same as a list. It never modifies the file.
Before the first row it refuses a file over the size limit or with more rows than allowed, counting
them without parsing where it can, so a file of millions of tiny rows costs no memory to refuse;
then rows stream, so memory stays a small multiple of the largest record. It raises `BadInputError`
naming the file and line for broken JSON, nesting too deep to parse, non-UTF-8 bytes and
records over the size limit. A UTF-8 byte-order mark is ignored. It knows nothing about chat formats.

The one exception to streaming is a JSON file holding one object with the records under a key
(`{"data": [...]}`): it is parsed whole, within the file size limit.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.data.json_stream import CHUNK, array_rows
from core.data.options import PrepareOptions
from core.data.read_errors import broken, not_utf8, oversized, too_deep
from core.errors import BadInputError

Row = tuple[int, Any]
TEXT_SUFFIXES = {".json", ".jsonl", ".ndjson", ".csv", ".tsv"}
RECORD_KEYS = ("data", "train", "rows", "records", "examples", "conversations", "messages")


def read_rows(path: Path, options: PrepareOptions) -> list[Row]:
    return list(iter_rows(path, options))


def iter_rows(path: Path, options: PrepareOptions, allowed_rows: int | None = None) -> Iterator[Row]:
    """The rows of one file or folder; `allowed_rows` (default `options.max_rows`) is checked up front."""
    path, limit = Path(path), options.max_rows if allowed_rows is None else allowed_rows
    if not path.exists():
        raise BadInputError(f"{path} does not exist.", "Check the path, or upload the file in the Data tab.")
    if path.is_dir():
        return _datasets_folder_rows(path, limit)
    _check_size(path, options)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path, limit)
    if suffix not in TEXT_SUFFIXES:
        raise BadInputError(f"{path.name}: unsupported file type {suffix or '(none)'}.",
                            "Use .json, .jsonl, .csv, .parquet or a folder saved with datasets.")
    kind = _text_kind(path, suffix, options)
    if kind == "object":
        return iter(_limited(path, _object_rows(path, options), limit))
    _refuse_too_many(path, _count_rows(path, kind, options, limit), limit)
    if kind == "jsonl":
        return _jsonl_rows(path, options)
    if kind == "array":
        return array_rows(path, options)
    return _csv_rows(path, "\t" if kind == "tsv" else ",", options)


def _check_size(path: Path, options: PrepareOptions) -> None:
    size = path.stat().st_size
    if size > options.max_file_mb * 1024 * 1024:
        raise BadInputError(f"{path.name} is {size / 2**20:,.0f} MB; the limit is {options.max_file_mb:,} MB.",
                            "Split the file, or raise max_file_mb.")
    if size == 0:
        raise BadInputError(f"{path.name} is empty.", "Check that the upload or export finished.")


def _refuse_too_many(path: Path, rows: int, limit: int) -> None:
    if rows > limit:
        raise BadInputError(f"{path.name} has more than {limit:,} rows; the limit is {limit:,} rows.",
                            "Split the file, or raise max_rows if this machine has the memory.")


def _limited(path: Path, rows: list[Row], limit: int) -> list[Row]:
    _refuse_too_many(path, len(rows), limit)
    return rows


# ---- what kind of text file, and how many rows ---------------------------------------------------

def _text_kind(path: Path, suffix: str, options: PrepareOptions) -> str:
    """"csv", "tsv", "jsonl", "array" (a JSON array) or "object" (one JSON object)."""
    if suffix in (".csv", ".tsv"):
        return suffix[1:]
    if suffix != ".json":
        return "jsonl"
    with open(path, "rb") as handle:
        first = b""
        while not first.strip() and (line := handle.readline(_line_cap(options))):
            first = line
        more = any(chunk.strip() for chunk in iter(lambda: handle.read(CHUNK), b""))
    head = first.decode("utf-8-sig", errors="replace").lstrip()
    if not head.startswith(("[", "{")):
        return "jsonl"
    if head.startswith("{") and more and _parses(head):  # one object per line, named .json
        return "jsonl"
    return "array" if head.startswith("[") else "object"


def _parses(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except (ValueError, RecursionError):
        return False


def _count_rows(path: Path, kind: str, options: PrepareOptions, limit: int) -> int:
    """Rows in the file, counted only as far as needed to tell whether there are more than `limit`."""
    newlines = commas = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            newlines, commas = newlines + chunk.count(b"\n"), commas + chunk.count(b",")
    upper = commas + 1 if kind == "array" else newlines + 1  # no more rows than this, without parsing
    if upper <= limit:
        return upper
    if kind == "jsonl":
        rows = (line for line in _binary_lines(path, options) if line[1].strip())
    elif kind == "array":
        rows = array_rows(path, options)
    else:
        rows = _csv_rows(path, "\t" if kind == "tsv" else ",", options)
    return sum(1 for _ in itertools.islice(rows, limit + 1))


# ---- streaming readers ---------------------------------------------------------------------------

def _line_cap(options: PrepareOptions) -> int:
    return 4 * options.max_record_chars + 2  # UTF-8 needs up to four bytes a character


def _binary_lines(path: Path, options: PrepareOptions) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) with the BOM removed; a line longer than any allowed record is refused."""
    cap = _line_cap(options)
    with open(path, "rb") as handle:
        for number, line in enumerate(iter(lambda: handle.readline(cap), b""), start=1):
            if len(line) == cap and not line.endswith(b"\n"):
                raise oversized(path, number, _rest_of_line(handle, len(line)), options, unit="bytes")
            yield number, line.removeprefix(codecs.BOM_UTF8) if number == 1 else line


def _rest_of_line(handle, size: int) -> int:
    """The length of a line that was too long to hold, measured by reading on to its end."""
    while piece := handle.readline(CHUNK):
        size += len(piece)
        if piece.endswith(b"\n"):
            break
    return size


def _text_lines(path: Path, options: PrepareOptions) -> Iterator[tuple[int, str]]:
    for number, line in _binary_lines(path, options):
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise not_utf8(path, number, error) from None


def _jsonl_rows(path: Path, options: PrepareOptions) -> Iterator[Row]:
    for number, line in _text_lines(path, options):
        if not line.strip():
            continue
        if len(line.rstrip("\r\n")) > options.max_record_chars:
            raise oversized(path, number, len(line.rstrip("\r\n")), options)
        yield number, _loads(path, number, line)


def _loads(path: Path, number: int, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise broken(path, number, error) from None
    except RecursionError:
        raise too_deep(path, number) from None


def _csv_rows(path: Path, delimiter: str, options: PrepareOptions) -> Iterator[Row]:
    csv.field_size_limit(options.max_record_chars)
    # Lines split at "\n" only, as a file opened with newline="" gives them: quoted newlines stay intact.
    reader = csv.DictReader((line for _, line in _text_lines(path, options)), delimiter=delimiter)
    line = 2
    try:
        for row in reader:
            yield line, {key: value for key, value in row.items() if key is not None}
            line = reader.line_num + 1
    except csv.Error as error:
        raise BadInputError(f"{path.name} line {reader.line_num}: {error}.",
                            f"Fields longer than {options.max_record_chars:,} characters are refused "
                            "(max_record_chars).") from None


def _object_rows(path: Path, options: PrepareOptions) -> list[Row]:
    text = "".join(line for _, line in _text_lines(path, options))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise broken(path, error.lineno, error) from None
    except RecursionError:
        raise too_deep(path, 1) from None
    records = _records_inside(value)
    for index, record in enumerate(records, start=1):
        if len(json.dumps(record, ensure_ascii=False)) > options.max_record_chars:
            raise oversized(path, index, None, options)
    return list(enumerate(records, start=1))


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


def _parquet_rows(path: Path, limit: int) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises its own types with long traces; a person gets a reason
        raise _unreadable_parquet(path, error) from None
    _refuse_too_many(path, file.metadata.num_rows, limit)
    return _parquet_batches(path, file)


def _parquet_batches(path: Path, file) -> Iterator[Row]:
    index = 0
    try:
        for batch in file.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                index += 1
                yield index, record
    except Exception as error:  # a corrupt page surfaces only when it is read
        raise _unreadable_parquet(path, error) from None


def _unreadable_parquet(path: Path, error: Exception) -> BadInputError:
    return BadInputError(f"{path.name} is not a readable Parquet file ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]}).", "Export it again, or convert it to JSONL.")


def _datasets_folder_rows(path: Path, limit: int) -> Iterator[Row]:
    from datasets import Dataset, DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except Exception as error:
        raise BadInputError(f"{path} is not a folder written by datasets' save_to_disk ({error}).",
                            "Pick a data file, or the folder that holds dataset_info.json.") from None
    splits = [loaded] if isinstance(loaded, Dataset) else list(DatasetDict(loaded).values())
    _refuse_too_many(path, sum(split.num_rows for split in splits), limit)
    return enumerate((row for split in splits for row in split), start=1)
