"""Atomic writes: a reader sees the old file or the new one, never half of either (RELIABILITY X2, T5).

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

from core.errors import DiskFullError


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
def directory(path: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes `path` only if the block finishes.

    With `replace=False` an existing `path` is an error; with `replace=True` it is swapped out whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise FileExistsError(f"{path} already exists")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
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
