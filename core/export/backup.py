"""One archive per run, with a SHA-256 manifest, that restores on another machine after verification.

The archive is a plain tar (weights barely compress) holding `MANIFEST.json` first and then the run's
settings, events, report and adapter, the dataset version it was trained on, one chosen GGUF and a
consistent copy of the ratings database. Checkpoints are left out (they are large and the adapter is
the result); files that may hold secrets (`.env`) never enter. Restore extracts into a temporary folder,
hashes every file, refuses links, paths that climb out, missing, extra or altered files, and only then
moves the run into the workspace. Nothing existing is overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from pathlib import Path

from core.errors import BadInputError, CorruptFileError
from core.export.run import Run
from core.workspace import Workspace

FORMAT = "chatsmith-backup/1"
MANIFEST = "MANIFEST.json"
SKIPPED = (".env", ".partial", ".tmp", "stop.requested")


def backup_run(workspace: Workspace, run: Run, out: Path, gguf: Path | None = None) -> Path:
    """Write the archive to `out` (any path, e.g. an external disk); the file appears only when complete."""
    out = Path(out)
    if out.is_dir() or not out.suffix:  # a folder, existing or not (e.g. an external disk's)
        out.mkdir(parents=True, exist_ok=True)
        out = out / f"{run.name}.chatsmith.tar"
    members = _members(workspace, run, gguf)
    manifest = {"format": FORMAT, "run": run.name, "created": time.time(),
                "files": {name: _sha256(path) for name, path in members.items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w") as archive:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(time.time())
            archive.addfile(info, io.BytesIO(data))
            for name, path in members.items():
                archive.add(path, arcname=name, recursive=False)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
        shutil.rmtree(_ratings_copy_dir(run), ignore_errors=True)
    return out


def restore_archive(workspace: Workspace, archive: Path, name: str | None = None) -> Path:
    """Verify every hash, then add the run (and its dataset and GGUF) to the workspace."""
    with tempfile.TemporaryDirectory(prefix=".restore.", dir=workspace.root) as tmp:
        manifest = _extract_verified(Path(archive), Path(tmp))
        name = name or manifest["run"]
        target = workspace.named(workspace.runs, name, "run")  # an archive's run name is untrusted
        if target.exists():
            raise BadInputError(f"A run named '{name}' already exists in {workspace.runs}; nothing was restored.",
                                "Restore under another name (--name), or rename the existing run.")
        staged = Path(tmp)
        dataset = next((p for p in (staged / "dataset").iterdir()), None) if (staged / "dataset").is_dir() else None
        if dataset and not (workspace.datasets / dataset.name).exists():
            shutil.move(str(dataset), workspace.datasets / dataset.name)
        if (staged / "gguf").is_dir():
            (workspace.exports / name).mkdir(parents=True, exist_ok=True)
            shutil.move(str(staged / "gguf"), workspace.exports / name / "gguf")
        if (staged / "ratings.sqlite").is_file():  # kept beside the run; never merged into live votes
            os.replace(staged / "ratings.sqlite", staged / "run" / "ratings.sqlite")
        os.replace(staged / "run", target)
    return target


def _members(workspace: Workspace, run: Run, gguf: Path | None) -> dict[str, Path]:
    members: dict[str, Path] = {}
    for path in sorted(run.folder.rglob("*")):
        relative = path.relative_to(run.folder)
        if path.is_file() and not path.is_symlink() and not _skipped(relative):
            members[f"run/{relative.as_posix()}"] = path
    dataset = Path(run.settings.dataset)
    dataset = dataset if dataset.is_absolute() else workspace.root / dataset
    if run.settings.dataset and dataset.is_dir():
        for path in sorted(p for p in dataset.rglob("*") if p.is_file() and not p.is_symlink()):
            members[f"dataset/{dataset.name}/{path.relative_to(dataset).as_posix()}"] = path
    if gguf:
        if not Path(gguf).is_file():
            raise BadInputError(f"{gguf} does not exist.", "Pick an exported GGUF, or leave it out.")
        members[f"gguf/{Path(gguf).name}"] = Path(gguf)
    if workspace.ratings_db.is_file():
        members["ratings.sqlite"] = _ratings_snapshot(workspace.ratings_db, _ratings_copy_dir(run))
    return members


def _skipped(relative: Path) -> bool:
    return (any(part.startswith("checkpoint-") for part in relative.parts)
            or any(relative.name.endswith(suffix) for suffix in SKIPPED))


def _ratings_copy_dir(run: Run) -> Path:
    return run.exports / ".backup-ratings"


def _ratings_snapshot(database: Path, folder: Path) -> Path:
    # SQLite's backup API gives a consistent copy even while the app is writing votes (WAL mode).
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "ratings.sqlite"
    copy.unlink(missing_ok=True)
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return copy


def _extract_verified(archive: Path, folder: Path) -> dict:
    refuse = lambda why: CorruptFileError(  # noqa: E731 - one message, several places
        f"{archive.name} failed verification ({why}); nothing was restored.",
        "The archive is damaged or was modified; use another copy of the backup.")
    try:
        with tarfile.open(archive, "r:*") as tar:
            manifest_member = tar.next()
            if manifest_member is None or manifest_member.name != MANIFEST:
                raise refuse("no manifest")
            manifest = json.loads(tar.extractfile(manifest_member).read())
            if manifest.get("format") != FORMAT:
                raise refuse(f"unknown format {manifest.get('format')!r}")
            expected, seen = dict(manifest["files"]), set()
            while (member := tar.next()) is not None:  # streaming: the manifest was the first entry
                climbs = Path(member.name).is_absolute() or ".." in Path(member.name).parts
                if climbs or not member.isfile() or member.name not in expected or member.name in seen:
                    raise refuse(f"unexpected entry '{member.name}'")
                target = folder / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with tar.extractfile(member) as source, open(target, "wb") as sink:
                    for block in iter(lambda: source.read(1 << 20), b""):
                        digest.update(block)
                        sink.write(block)
                if digest.hexdigest() != expected[member.name]:
                    raise refuse(f"SHA-256 of '{member.name}' does not match the manifest")
                seen.add(member.name)
            if missing := sorted(set(expected) - seen):
                raise refuse(f"missing {', '.join(missing[:3])}")
    except (tarfile.TarError, OSError, ValueError, KeyError, EOFError) as error:
        raise refuse(str(error)) from error
    return manifest


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
