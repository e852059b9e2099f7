"""`python -m core.export`: every subcommand of the issue, headless, on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.export.__main__ import main
from tests.browser import ROOT
from tests.export_helpers import make_run


def _run_cli(capsys, *argv) -> dict:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)


@pytest.mark.slow
def test_cli_exports_a_run_end_to_end(workspace, tiny_model_dir, capsys, tmp_path):
    make_run(workspace, tiny_model_dir, name="a", seed=0)
    make_run(workspace, tiny_model_dir, name="b", seed=1)
    ws = ["--workspace", str(workspace.root)]

    package = _run_cli(capsys, *ws, "adapter", "a")
    assert (workspace.exports / "a" / "package" / "inference.py").is_file() and package["folder"]

    gguf = _run_cli(capsys, *ws, "gguf", "a", "--quant", "Q8_0", "--out", str(tmp_path / "a.gguf"))
    assert (tmp_path / "a.gguf").is_file() and set(gguf["files"]) == {"F16", "Q8_0"}
    assert gguf["recommended"] == "Q8_0"

    report = _run_cli(capsys, *ws, "roundtrip", "a", "--max-new-tokens", "4")
    assert report["models"]["merged"]["agreement"] == 1.0 and "Q8_0" in report["models"]

    fused = _run_cli(capsys, *ws, "fuse", "a", "b", "--weights", "0.5", "0.5", "--method", "ties")
    assert fused["run"] == "fused-a-b"

    space = _run_cli(capsys, *ws, "space", "a", "--target", "cpu", "--gguf", str(tmp_path / "a.gguf"),
                     "--out", str(tmp_path / "space"))
    assert (tmp_path / "space" / "app.py").is_file() and space["folder"] == str(tmp_path / "space")

    backup = _run_cli(capsys, *ws, "backup", "a", "--out", str(tmp_path / "a.tar"))
    restored = _run_cli(capsys, *ws, "restore", backup["archive"], "--name", "a-copy")
    assert restored["run"] == "a-copy" and (workspace.runs / "a-copy" / "adapter").is_dir()


def test_cli_errors_are_plain_sentences_with_exit_code_2(workspace, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_CANARYcliTokenNeverPrinted")
    assert main(["--workspace", str(workspace.root), "adapter", "no-such-run"]) == 2
    assert "No run 'no-such-run'" in capsys.readouterr().err


def test_cli_push_offline_is_refused_without_leaking_the_token(workspace, tiny_model_dir, capsys, monkeypatch):
    make_run(workspace, tiny_model_dir, name="a")
    monkeypatch.setenv("HF_TOKEN", "hf_CANARYcliTokenNeverPrinted")
    assert main(["--workspace", str(workspace.root), "adapter", "a"]) == 0
    code = main(["--workspace", str(workspace.root), "push", "a", "--what", "adapter", "--repo", "me/a"])
    captured = capsys.readouterr()
    assert code == 2 and "HF_HUB_OFFLINE" in captured.err
    assert "CANARY" not in captured.out + captured.err


@pytest.mark.parametrize("argv", [["gguf", "a", "--quant", "Q3_K"], ["space", "a", "--target", "tpu", "--out", "x"]])
def test_cli_rejects_unknown_choices(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)


def test_out_never_deletes_a_folder_the_app_did_not_make(workspace, tiny_model_dir, tmp_path):
    """`--out` pointed at the user's own folder (or at `.`) is refused by name and its files stay; a folder
    the app made itself is replaced on the next export."""

    make_run(workspace, tiny_model_dir, name="a")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.txt").write_text("four years of work")

    def space(out: str, cwd=ROOT):
        return subprocess.run([sys.executable, "-m", "core.export", "--workspace", str(workspace.root), "space",
                               "a", "--target", "zerogpu", "--no-bundle", "--model-repo", "me/a", "--out", out],
                              cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              capture_output=True, text=True, timeout=300)

    for out, cwd in ((str(victim), ROOT), (".", victim)):
        refused = space(out, cwd)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert f"{victim} already exists and was not made by Chatsmith" in refused.stderr
        assert sorted(p.name for p in victim.iterdir()) == ["thesis.txt"]
        assert (victim / "thesis.txt").read_text() == "four years of work"

    legacy = workspace.exports / "a" / "package"  # the default place, made before folders were marked
    legacy.mkdir(parents=True)
    (legacy / "stale.txt").write_text("left by an older version")
    default = subprocess.run([sys.executable, "-m", "core.export", "--workspace", str(workspace.root), "adapter",
                              "a"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert default.returncode == 0 and not (legacy / "stale.txt").exists() and (legacy / "inference.py").is_file()

    made = tmp_path / "made-by-the-app"
    assert space(str(made)).returncode == 0 and (made / "app.py").is_file()
    (made / "stale.txt").write_text("left by an earlier export")
    again = space(str(made))
    assert again.returncode == 0, again.stderr[-2000:]
    assert (made / "app.py").is_file() and not (made / "stale.txt").exists()
