"""Atomic writes: a reader sees the old file or the new one, never half of either:
a crash or a full disk mid-write leaves the previous file whole.

Everything is written to a temporary sibling first and moved into place with `os.replace`, which is
atomic on one filesystem. A failed write removes its temporary file and leaves the old one untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import DiskFullError, OutputExistsError


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_sibling(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value: Any) -> Path:
    return write_text(path, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_jsonl(path: str | os.PathLike, records: Any) -> Path:
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return write_text(path, lines)


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write a large file into (a zip, an archive) piece by
    piece; it becomes `path` only if the block finishes, and is removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_sibling(path) as tmp:
        yield Path(tmp)
        os.replace(tmp, path)


MARKER = ".chatsmith-folder"
"""Written into each folder `directory(replace=True)` makes: the one sign that the app may replace it."""
MARKER_TEXT = "Chatsmith made this folder and replaces it whole when it exports again.\n"


@contextlib.contextmanager
def directory(path: str | os.PathLike, replace: bool = False, owned: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `path` only if the block finishes.

    With `replace=False` an existing `path` is an error. With `replace=True` it is swapped out whole, but
    only if it carries `MARKER`, i.e. an earlier `directory(replace=True)` made it: a folder the user
    made (an `--out ~/project`, a `--out .`) is never deleted, and `OutputExistsError` names it.
    `owned=True` is the caller vouching that `path` is its own default place in the workspace (a run's
    adapter, a run's export), replaced even without a marker: versions before the marker made those too.
    """
    path = Path(path).absolute()  # `.` has no name to build a sibling from, and the message names it in full
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not (replace and (owned or (path / MARKER).is_file())):
        raise OutputExistsError(
            f"{path} already exists" + (" and was not made by Chatsmith, so it was left untouched." if replace
                                        else "."),
            "Choose a new folder (one that does not exist yet), or move that one away yourself." if replace
            else "")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        if replace:
            write_text(tmp / MARKER, MARKER_TEXT)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        _raise_disk_full(error, path)
        raise


def ensure_free_space(folder: str | os.PathLike, needed_bytes: int, what: str) -> None:
    """Refuse to start a write that cannot fit, before anything is written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise DiskFullError(
            f"Not enough disk space for {what}: {needed_bytes / 1e9:.2f} GB needed, "
            f"{free / 1e9:.2f} GB free in {folder}.",
            "Free some space (old runs or exports) or choose another workspace with --workspace.",
        )


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[str]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _raise_disk_full(error, path)
        raise


def _raise_disk_full(error: BaseException, path: Path) -> None:
    import errno

    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        raise DiskFullError(
            f"The disk filled up while writing {path}; the previous version is intact.",
            "Free some space and try again.",
        ) from error
