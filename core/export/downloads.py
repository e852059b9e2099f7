"""What a run's exports offer for download from the browser, and zips of folders built on demand.

Every item lives under `workspace.exports/<run>/`: the GGUFs and their Modelfiles (`gguf/`), backup
archives (`backup/`) as files; the merged model, the adapter package and Space folders as one zip each,
written to `downloads/` beside them on first request and rebuilt when the folder is newer. Names come
from the page, so `resolve` accepts only a name from `items` and a real location (symlinks followed)
inside the run's export folder; anything else is refused with `BadInputError`.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core import atomic
from core.errors import BadInputError, LockedError
from core.workspace import Workspace

FOLDERS = {"merged": "Merged model", "package": "Adapter package", "space-cpu": "Space folder (CPU)",
           "space-zerogpu": "Space folder (ZeroGPU)"}
FILES = {"gguf/*.gguf": "GGUF", "gguf/*.Modelfile": "Ollama Modelfile", "backup/*.tar": "Backup"}
ZIPS = "downloads"
STORED = {".safetensors", ".gguf", ".bin", ".pt", ".tar"}
"""Weights barely compress; storing them keeps a big zip fast to build."""


@dataclass(frozen=True)
class Item:
    """One downloadable export of a run."""

    name: str
    """Its path relative to the run's export folder, e.g. "gguf/run-1-Q8_0.gguf" or "merged"."""
    label: str
    """What the page shows: kind, name, size."""


def items(workspace: Workspace, run_name: str) -> list[Item]:
    root = workspace.named(workspace.exports, run_name, "run")
    found = [Item(str(path.relative_to(root)), f"{kind} · {path.name} · {_size(path.stat().st_size)}")
             for pattern, kind in FILES.items() for path in sorted(root.glob(pattern)) if path.is_file()]
    for name, kind in FOLDERS.items():
        if (root / name).is_dir():
            found.append(Item(name, f"{kind} · {name}.zip · {_size(_folder_bytes(root / name))} before zipping"))
    return found


def resolve(workspace: Workspace, run_name: str, name: str) -> Path:
    """The file or folder `name` means, refused unless it is one of `items` inside the run's exports."""
    root = workspace.named(workspace.exports, run_name, "run")
    offered = {item.name for item in items(workspace, run_name)} if root.is_dir() else set()
    path = root / str(name or "")
    if name not in offered or not path.resolve().is_relative_to(root.resolve()):
        raise BadInputError(f"'{name}' is not an export of run {root.name}.", "Pick a download from the list.")
    return path


def prepare(workspace: Workspace, run_name: str, name: str, progress=None) -> Path:
    """The file to send for `name`: the file itself, or a zip of the folder (built now if missing or older).
    Refused while the app is locked: a fine-tune carries what its private data taught it."""
    if workspace.locked_reason:
        raise LockedError(f"Downloads are disabled: {workspace.locked_reason}",
                          "Restart with --auth USER:PASSWORD, or bind to 127.0.0.1.")
    path = resolve(workspace, run_name, name)
    if path.is_file():
        return path
    target = path.parent / ZIPS / f"{path.name}.zip"
    members = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name != atomic.MARKER]
    if target.is_file() and all(p.stat().st_mtime <= target.stat().st_mtime for p in [path, *members]):
        return target
    total = sum(p.stat().st_size for p in members)
    atomic.ensure_free_space(target.parent, total, f"the zip of {path.name}")
    report = progress or (lambda done, total, message: None)
    done = 0
    with atomic.replacing(target) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:
        for member in members:
            report(done, total, f"Zipping {path.name}: {_size(done)} of {_size(total)}")
            kind = zipfile.ZIP_STORED if member.suffix in STORED else zipfile.ZIP_DEFLATED
            archive.write(member, f"{path.name}/{member.relative_to(path)}", compress_type=kind)
            done += member.stat().st_size
    report(total, total, f"{target.name} ready ({_size(target.stat().st_size)}).")
    return target


def ollama_lines(gguf_name: str) -> str:
    """Shell lines that turn a downloaded GGUF and its Modelfile (same folder) into an Ollama model."""
    stem = Path(gguf_name).stem
    model = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.") or "chatsmith"
    return f"ollama create {model} -f {stem}.Modelfile\nollama run {model}"


def lmstudio_hint(gguf_name: str) -> str:
    return (f"LM Studio: `lms import {Path(gguf_name).name}`, or put the file in a publisher/model folder under "
            "LM Studio's models folder (My Models shows where). It reads the chat template from the GGUF.")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _size(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} kB"
