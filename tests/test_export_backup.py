"""Backup and restore: one verified archive per run; tampering, climbing paths and clashes are refused."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile

import pytest

from core.errors import BadInputError, CorruptFileError
from core.export.backup import backup_run, restore_archive
from core.export.run import open_run
from core.train import runs
from core.workspace import Workspace
from tests.export_helpers import make_run


@pytest.fixture
def archive(workspace, tiny_model_dir, tmp_path):
    folder = make_run(workspace, tiny_model_dir)
    (workspace.datasets / "v-abc123").mkdir()
    (workspace.datasets / "v-abc123" / "train.jsonl").write_text('{"messages": []}\n')
    (folder / "checkpoint-5").mkdir()
    (folder / "checkpoint-5" / "optimizer.pt").write_bytes(b"x" * 1000)
    (folder / ".env").write_text("HF_TOKEN=hf_CANARYnotInBackups\n")
    with sqlite3.connect(workspace.ratings_db) as db:
        db.execute("create table votes (id integer primary key, winner text)")
        db.execute("insert into votes (winner) values ('a')")
    gguf = tmp_path / "run-1-Q8_0.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    (tmp_path / "external-disk").mkdir()
    return backup_run(workspace, open_run(workspace, "run-1"), tmp_path / "external-disk", gguf=gguf)


def test_backup_restores_on_another_workspace(archive, tmp_path):
    assert archive.name == "run-1.chatsmith.tar" and archive.parent.name == "external-disk"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "MANIFEST.json"
    assert not [n for n in names if "checkpoint-" in n or n.endswith(".env")]

    laptop = Workspace(tmp_path / "laptop").ensure()
    run_folder = restore_archive(laptop, archive)
    assert (run_folder / "adapter" / "adapter_model.safetensors").is_file()
    assert runs.read_config(run_folder).lora_rank == 4  # the run's settings came back with it
    assert (laptop.datasets / "v-abc123" / "train.jsonl").is_file()
    assert (laptop.exports / "run-1" / "gguf" / "run-1-Q8_0.gguf").read_bytes() == b"GGUF fake weights"
    with sqlite3.connect(run_folder / "ratings.sqlite") as db:
        assert db.execute("select count(*) from votes").fetchone()[0] == 1
    open_run(laptop, "run-1")  # the restored adapter passes the same checks as a trained one

    with pytest.raises(BadInputError, match="already exists"):
        restore_archive(laptop, archive)


def test_tampered_archive_is_refused_and_nothing_restored(archive, tmp_path):
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(tampered, "w") as tar:
        for member, data in members:
            if member.name == "run/report.md":
                data = data.replace(b"2.1", b"0.1")
            tar.addfile(member, io.BytesIO(data))
    laptop = Workspace(tmp_path / "laptop").ensure()
    with pytest.raises(CorruptFileError, match="SHA-256 of 'run/report.md' does not match"):
        restore_archive(laptop, tampered)
    assert not list(laptop.runs.iterdir()) and not list(laptop.datasets.iterdir())


def test_truncated_archive_and_climbing_paths_are_refused(archive, tmp_path):
    laptop = Workspace(tmp_path / "laptop").ensure()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="failed verification"):
        restore_archive(laptop, truncated)

    evil = tmp_path / "evil.tar"
    manifest = json.dumps({"format": "chatsmith-backup/1", "run": "x",
                           "files": {"../../escape.txt": "0" * 64}}).encode()
    with tarfile.open(evil, "w") as tar:
        for name, data in (("MANIFEST.json", manifest), ("../../escape.txt", b"hi")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CorruptFileError, match="unexpected entry"):
        restore_archive(laptop, evil)
    assert not (tmp_path / "escape.txt").exists() and not list(laptop.runs.iterdir())
