"""Downloads of a run's exports: files as they are, folders zipped atomically with progress, names from
the page refused unless they are an export of that run, nothing served while the app is locked; the
Modelfile and the Ollama / LM Studio lines; the Export log without the libraries' chatter."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import pytest

from core.errors import BadInputError, LockedError
from core.export import downloads, gguf, logview
from core.export.package import training_system_prompt
from core.export.run import Run
from core.train.settings import TrainSettings


@pytest.fixture
def exported(workspace):
    root = workspace.exports / "run-1"
    (root / "gguf").mkdir(parents=True)
    (root / "gguf" / "run-1-Q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 200_000)
    (root / "gguf" / "run-1-Q8_0.Modelfile").write_text("FROM ./run-1-Q8_0.gguf\n")
    (root / "merged").mkdir()
    (root / "merged" / "model.safetensors").write_bytes(b"\1" * 300_000)
    (root / "merged" / "config.json").write_text('{"model_type": "llama"}')
    (root / "merged" / ".chatsmith-folder").write_text("made by Chatsmith\n")
    (workspace.root / "secret.txt").write_text("not an export")
    return root


def test_every_export_is_offered_files_as_they_are_folders_as_zips(workspace, exported):
    offered = {item.name: item.label for item in downloads.items(workspace, "run-1")}
    assert set(offered) == {"gguf/run-1-Q8_0.gguf", "gguf/run-1-Q8_0.Modelfile", "merged"}
    assert offered["merged"].startswith("Merged model · merged.zip")
    assert downloads.prepare(workspace, "run-1", "gguf/run-1-Q8_0.gguf") == exported / "gguf" / "run-1-Q8_0.gguf"
    steps = []
    archive = downloads.prepare(workspace, "run-1", "merged", lambda done, total, message: steps.append(message))
    assert archive == exported / "downloads" / "merged.zip"
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == ["merged/config.json", "merged/model.safetensors"]
        assert opened.read("merged/model.safetensors") == b"\1" * 300_000
    assert steps[-1].startswith("merged.zip ready") and any("Zipping merged" in step for step in steps)
    assert [p.name for p in archive.parent.iterdir()] == ["merged.zip"], "no temporary file is left"
    assert "downloads" not in {item.name for item in downloads.items(workspace, "run-1")}


def test_a_zip_is_rebuilt_only_when_the_folder_changed(workspace, exported):
    import os

    archive = downloads.prepare(workspace, "run-1", "merged")
    built = archive.stat().st_mtime_ns
    assert downloads.prepare(workspace, "run-1", "merged").stat().st_mtime_ns == built
    (exported / "merged" / "config.json").write_text('{"model_type": "llama", "changed": true}')
    later = archive.stat().st_mtime + 5
    os.utime(exported / "merged" / "config.json", (later, later))
    with zipfile.ZipFile(downloads.prepare(workspace, "run-1", "merged")) as opened:
        assert b"changed" in opened.read("merged/config.json")


@pytest.mark.parametrize("name", ["../../secret.txt", "../secret.txt", "gguf/../../../secret.txt", "/etc/passwd",
                                  "gguf", "downloads/merged.zip", "", "merged/config.json"])
def test_crafted_names_are_refused(workspace, exported, name):
    with pytest.raises(BadInputError):
        downloads.prepare(workspace, "run-1", name)


def test_crafted_run_names_and_links_out_of_the_export_are_refused(workspace, exported):
    for run in ("../run-1", "..", "/tmp", "run-1/../.."):
        with pytest.raises(BadInputError):
            downloads.prepare(workspace, run, "merged")
    (exported / "gguf" / "evil.gguf").symlink_to(workspace.root / "secret.txt")
    with pytest.raises(BadInputError):
        downloads.prepare(workspace, "run-1", "gguf/evil.gguf")


def test_nothing_is_served_while_the_app_is_locked(workspace, exported):
    locked = dataclasses.replace(workspace, locked_reason="reachable from the network without a login")
    with pytest.raises(LockedError, match="Downloads are disabled"):
        downloads.prepare(locked, "run-1", "gguf/run-1-Q8_0.gguf")
    assert not (exported / "downloads").exists()


def test_modelfile_carries_the_chat_sampling_and_the_training_system_prompt(tmp_path):
    metadata = {"stop": "<|im_end|>", "chat_template": "{% for m in messages %}<|im_start|>{% endfor %}"}
    text = gguf.write_modelfile(tmp_path / "run-1-Q8_0.gguf", metadata, system="You are Kestrel.").read_text()
    for line in ("PARAMETER temperature 0.7", "PARAMETER top_p 0.9", "PARAMETER top_k 40",
                 "PARAMETER repeat_penalty 1.1", 'SYSTEM """You are Kestrel."""', 'PARAMETER stop "<|im_end|>"'):
        assert line in text.splitlines()
    assert "SYSTEM" not in gguf.write_modelfile(tmp_path / "b-Q8_0.gguf", metadata).read_text()


def test_system_prompt_is_the_one_most_training_conversations_open_with(tmp_path):
    dataset = tmp_path / "v-1"
    dataset.mkdir()
    rows = [[{"role": "system", "content": "You are Kestrel."}, {"role": "user", "content": f"q{i}"}]
            for i in range(3)] + [[{"role": "user", "content": "no system"}]]
    (dataset / "train.jsonl").write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows))
    run = Run("run-1", tmp_path, TrainSettings(dataset=str(dataset)), tmp_path / "exports")
    assert training_system_prompt(run) == "You are Kestrel."
    assert training_system_prompt(dataclasses.replace(run, settings=TrainSettings())) == ""


def test_ollama_and_lm_studio_lines_name_the_downloaded_files():
    assert downloads.ollama_lines("gguf/Run 1-Q8_0.gguf") == \
        "ollama create run-1-q8_0 -f Run 1-Q8_0.Modelfile\nollama run run-1-q8_0"
    assert "lms import run-1-Q8_0.gguf" in downloads.lmstudio_hint("gguf/run-1-Q8_0.gguf")


def test_export_log_shows_the_apps_lines_without_library_chatter():
    raw = "\n".join([
        "Generating with base + adapter (the reference)…",
        "/venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3312: FutureWarning: `is_gradient_"
        "checkpointing` is deprecated and will be removed in v6.",
        "  warnings.warn(",
        "Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. Please make sure",
        "llama_model_quantize_impl: model size  =     3.04 MiB (16.00 BPW)",
        "[   6/  20] blk.0.attn_q.weight - [32, 32, 1, 1], type = f16, converting to q8_0 .. size = 0.00 MiB",
        "Loading weights: 100%|██████████| 272/272 [00:00<00:00, 9132.94it/s]",
        "Q8_0: run-1-Q8_0.gguf (1.7 MB, stops at <|im_end|>)",
        "Q8_0 (recommended): agrees on all prompts with the merged model, greedy.",
    ])
    assert logview.readable(raw).splitlines() == [
        "Generating with base + adapter (the reference)…", "Q8_0: run-1-Q8_0.gguf (1.7 MB, stops at <|im_end|>)",
        "Q8_0 (recommended): agrees on all prompts with the merged model, greedy."]
