"""What a finished job leaves on disk, placed in a workspace by browser tests without running the job:
a trained run's adapter, an exported GGUF (the packaged default model's), a saved dataset, and the
guided first run's job folder as its worker writes it."""

from __future__ import annotations

import json
import os
import time

import psutil

from core import atomic, journey
from core.models import packaged_gguf
from core.workspace import Workspace


def place_gguf(workspace: Workspace, relative: str) -> None:
    path = workspace.exports / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(packaged_gguf(), path)


def place_run(workspace: Workspace, name: str) -> None:
    adapter = workspace.runs / name / "adapter"
    adapter.mkdir(parents=True)
    atomic.write_json(adapter / "adapter_config.json", {"base_model_name_or_path": "default"})
    (adapter / "adapter_model.safetensors").write_bytes(b"")  # listed, never loaded here
    (workspace.runs / name / "config.yaml").write_text("model: default\n", encoding="utf-8")


def place_dataset(workspace: Workspace, name: str) -> None:
    folder = workspace.datasets / name
    folder.mkdir(parents=True)
    atomic.write_json(folder / "dataset.json", {"created": time.time(), "name": name})
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    (folder / "train.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")


def write_journey(workspace: Workspace, events: list[dict], state: str) -> None:
    """The journey's job folder as its worker leaves it; "running" names this process as the worker."""
    folder = journey.folder(workspace)
    atomic.write_json(folder / "job.json", {"kind": "journey", "title": "Guided first run", "created": 0,
                                            "target": journey.TARGET, "params": {}})
    me = psutil.Process()
    atomic.write_jsonl(folder / "events.jsonl", events)
    atomic.write_json(folder / "status.json", {"state": state, "step": len(events), "total": 5, "message": "",
                                               "pid": me.pid, "pid_started": me.create_time()})
