"""`python -m core.train` as a user runs it: key=value overrides, typed, refused when unknown, and the
config.yaml a run writes explains each knob and reads back to the same settings."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from core.train import runs
from core.train.config_file import field_notes
from core.train.settings import TrainSettings
from tests.conftest import ROOT
from tests.train_helpers import tiny_settings


def train_cli(*args: str):
    return subprocess.run([sys.executable, "-m", "core.train", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_overrides_train_a_new_run_whose_config_explains_itself_and_reads_back(tiny_model_dir, workspace,
                                                                                version, tmp_path):
    base = tiny_settings(tiny_model_dir, version, max_steps=3, save_steps=0)
    runs.write_config(tmp_path, base)

    done = train_cli(tmp_path / runs.CONFIG_FILE, "learning_rate=1e-4", "max_steps=1", "assistant_only_loss=no",
                     "--workspace", workspace.root, "--name", "overridden")

    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run_dir = workspace.runs / "overridden"
    wanted = base.with_changes(learning_rate=1e-4, max_steps=1, assistant_only_loss=False)
    assert runs.read_config(run_dir) == wanted and isinstance(runs.read_config(run_dir).max_steps, int)
    assert "finished 1 of 1 steps" in (run_dir / runs.REPORT_FILE).read_text()
    lines = (run_dir / runs.CONFIG_FILE).read_text().splitlines()
    for key in TrainSettings.__dataclass_fields__:
        above = lines[next(i for i, line in enumerate(lines) if line.startswith(f"{key}:")) - 1]
        assert above == f"# {field_notes()[key]}", key  # every knob under its one-line reason
    assert field_notes()["learning_rate"].startswith("Peak learning rate")


def test_unknown_keys_and_bad_values_are_refused_before_a_run_is_made(tiny_model_dir, workspace, version, tmp_path):
    runs.write_config(tmp_path, tiny_settings(tiny_model_dir, version))
    config = tmp_path / runs.CONFIG_FILE
    for pairs, says in [(["learning_rat=1e-4"], r"Unknown training setting 'learning_rat'.*Known settings: .*"
                                                r"learning_rate"),
                        (["max_steps=1.5"], r"max_steps=1.5: max_steps is a whole number"),
                        (["learning_rate=fast"], r"learning_rate=fast: learning_rate is a number"),
                        (["load_in_4bit=maybe"], r"load_in_4bit is true or false"),
                        (["max_steps"], r"'max_steps' is not a key=value override"),
                        (["learning_rate=2"], r"'learning_rate' must be between 0 and 1"),
                        (["max_steps=5", "--resume"], r"--resume continues a run as it was configured")]:
        done = train_cli(config, *pairs, "--workspace", workspace.root)
        assert done.returncode == 2 and re.search(says, done.stderr), (pairs, done.stderr)
    assert not workspace.runs.exists() or not any(workspace.runs.iterdir())


def test_warmup_ratio_becomes_a_share_of_the_steps(tiny_model_dir, workspace, version, tmp_path):
    """The recipe passes warmup_ratio as warmup_steps, which transformers 5 reads as a share below 1."""
    from core.devices import detect
    from core.train.recipe import sft_config

    settings = tiny_settings(tiny_model_dir, version, warmup_ratio=0.05)
    config = sft_config(settings, tmp_path, detect(workspace.root), "fp32", has_eval=False)
    assert config.get_warmup_steps(200) == 10 and config.get_warmup_steps(7) == 1
