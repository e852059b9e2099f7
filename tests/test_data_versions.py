"""Data stage: saved versions, the command line end to end, and real public files in several formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.data import PrepareOptions, list_versions, load_split, prepare, save_version
from tests.conftest import ROOT, SHARED_DATA

FAST = PrepareOptions(model="", near_dup_threshold=0)


def sample_file(tmp_path, count=20, name="qa.jsonl"):
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + {i}?"},
                          {"role": "assistant", "content": f"{i} + {i} = {2 * i}."}]} for i in range(count)]
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_save_version_is_immutable_and_content_named(workspace, tmp_path):
    prepared = prepare([sample_file(tmp_path)], FAST)
    folder = save_version(workspace, prepared, "Arithmetic drills")
    assert folder.parent == workspace.datasets and folder.name.startswith("arithmetic-drills-")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "dataset.json", "report.json", "report.md", "train.jsonl", "validation.jsonl"]
    before = (folder / "dataset.json").read_text()
    again = save_version(workspace, prepare([sample_file(tmp_path)], FAST), "another name")
    assert again == folder and (folder / "dataset.json").read_text() == before
    assert load_split(folder, "train") + load_split(folder, "validation") == prepared.records
    metadata = json.loads(before)
    assert metadata["counts"] == {"train": 19, "validation": 1} and metadata["sources"] == {"qa": 20}
    assert metadata["options"]["seed"] == 42
    assert not [p for p in workspace.datasets.iterdir() if p.name.startswith(".")]


def test_list_versions_newest_first(workspace, tmp_path):
    first = save_version(workspace, prepare([sample_file(tmp_path, 5)], FAST), "one")
    second = save_version(workspace, prepare([sample_file(tmp_path, 6)], FAST), "two")
    (workspace.datasets / "half-written").mkdir()
    data = json.loads((first / "dataset.json").read_text())
    data["created"] = "2000-01-01T00:00:00Z"
    (first / "dataset.json").write_text(json.dumps(data))
    assert list_versions(workspace) == [second, first]


def test_the_newest_conversation_version_comes_back_with_its_saved_report(workspace, tmp_path):
    from core.data.versions import newest_report

    assert newest_report(workspace) is None
    older = save_version(workspace, prepare([sample_file(tmp_path, 5)], FAST), "older")
    newer = save_version(workspace, prepare([sample_file(tmp_path, 7)], FAST), "Arithmetic drills")
    data = json.loads((older / "dataset.json").read_text())
    data["created"] = "2000-01-01T00:00:00Z"
    (older / "dataset.json").write_text(json.dumps(data))
    folder, text, report = newest_report(workspace)
    assert folder == newer and text.startswith("# Data report: Arithmetic drills") and report["kept"] == 7
    meta = json.loads((newer / "dataset.json").read_text())
    (newer / "dataset.json").write_text(json.dumps({**meta, "kind": "preferences"}))  # shown in its own section
    assert newest_report(workspace)[0] == older


def test_cli_prepare_writes_the_files_and_reports(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "core.data", "prepare", str(sample_file(tmp_path)), "--out", str(out),
         "--model", "", "--validation-share", "0.25", "--near-dup-threshold", "0.8"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert {"kept", "dropped", "duplicates", "near_duplicates", "sources"} <= set(report)
    assert report["kept"] == len((out / "train.jsonl").read_text().splitlines()) + len(
        (out / "validation.jsonl").read_text().splitlines())
    assert len((out / "validation.jsonl").read_text().splitlines()) == round(report["kept"] * 0.25)
    assert "kept" in result.stdout


def test_cli_bad_input_exits_nonzero_with_one_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"messages": []}\n{oops\n', encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "core.data", "prepare", str(path), "--out", str(tmp_path / "o"),
                             "--model", ""], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.jsonl line 2" in errors[0]
    assert not (tmp_path / "o").exists()


# Real files from public repositories, present only beside a checkout that has them (they are not
# ours to ship); the same assertions run on the project's own samples, written in the same shapes.
PUBLIC = SHARED_DATA / "formats"
PUBLIC_FILES = {"alpaca_en_demo.json": "alpaca", "alpaca_zh_demo.json": "alpaca", "identity_alpaca.json": "alpaca",
                "sharegpt_toolcall_en_demo.json": "sharegpt", "sharegpt_dummy_conversation.json": "sharegpt"}
OWN_FILES = {ROOT / "assets" / "samples" / "identity_alpaca.json": "alpaca",
             ROOT / "assets" / "samples" / "everyday_sharegpt.json": "sharegpt",
             ROOT / "tests" / "fixtures" / "sharegpt_toolcall.json": "sharegpt"}


def assert_clean_canonical(files: dict[Path, str], identity: str, tool_calls: str) -> None:
    """Detected formats, every row accounted for, placeholders filled, tool turns and tool lists kept."""
    prepared = prepare(list(files), PrepareOptions(model=""))
    report = prepared.report
    assert set(report["sources"]) == {path.stem for path in files}
    assert {f["name"]: f["format"] for f in report["files"]} == \
        {path.name: kind for path, kind in files.items()}
    assert report["rows"] == report["kept"] + sum(report["dropped"].values()) + report["duplicates"] + \
        report["near_duplicates"]
    named = [r for r in prepared.records if r["source"] == identity]
    assert named and not any("{{" in m["content"] for r in named for m in r["messages"])
    assert any("Kestrel" in m["content"] for r in named for m in r["messages"])
    tool_records = [r for r in prepared.records if r["source"] == tool_calls]
    assert tool_records and any(m["role"] == "tool" for r in tool_records for m in r["messages"])
    assert all("tools" in r for r in tool_records)


@pytest.mark.skipif(not PUBLIC.is_dir(), reason="the public sample files are not beside this checkout")
def test_public_files_become_clean_canonical_data():
    assert_clean_canonical({PUBLIC / name: kind for name, kind in PUBLIC_FILES.items()}, "identity_alpaca",
                           "sharegpt_toolcall_en_demo")


def test_alpaca_sharegpt_and_tool_call_files_become_clean_canonical_data():
    assert_clean_canonical(OWN_FILES, "identity_alpaca", "sharegpt_toolcall")


def test_cli_mapping_placeholders_caps_and_workspace_version(tmp_path):
    odd = tmp_path / "odd.jsonl"
    odd.write_text("".join(json.dumps({"q": f"Who are you? ({i})", "a": "I'm {{name}}, made by {{author}}."}) + "\n"
                           for i in range(6)), encoding="utf-8")
    command = [sys.executable, "-m", "core.data", "prepare", str(odd), "--workspace", str(tmp_path / "ws"),
               "--name", "Wren", "--model", "", "--near-dup-threshold", "0", "--map", "instruction=q",
               "--map", "output=a", "--placeholder", "name=Wren", "--cap", "odd=4"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "ws" / "datasets").iterdir()
    records = load_split(folder, "train") + load_split(folder, "validation")
    assert len(records) == 4 and records[0]["messages"][-1]["content"] == "I'm Wren, made by Chatsmith."
    bad = subprocess.run(command[:-2] + ["--map", "answer=a"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "--map does not know answer" in bad.stderr
