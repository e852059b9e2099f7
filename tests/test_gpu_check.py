"""bench/gpu_check.py, the one script a lent GPU runs: what a CPU can check of it.

Without CUDA it must say so and measure nothing; `--dry-run` runs every check's code on the CPU with a
tiny shape; a check that fails is a FAIL row and a non-zero exit, so a GPU run cannot pass by mistake.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclass looks its module up while the class is made
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def _no_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the script would really run")


def test_without_cuda_it_says_so_and_measures_nothing():
    _no_cuda()
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs an NVIDIA GPU" in done.stderr and "--dry-run" in done.stderr
    assert "| check |" not in done.stdout


def test_a_failing_check_is_a_fail_row_and_a_non_zero_exit(gpu_check, monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("CUDA error: an illegal memory access")

    monkeypatch.setattr(gpu_check, "CHECKS", [("fine", lambda args: [gpu_check.Row("fine", "PASS", "ok")]),
                                              ("broken", broken)])
    assert gpu_check.main(["--dry-run"]) == 1
    table = capsys.readouterr().out
    assert "| fine | PASS | ok |" in table and "| broken | FAIL | RuntimeError: CUDA error" in table


def test_mfu_counts_the_linear_weights_the_estimator_counts(gpu_check):
    from core.train.preflight import count_parameters
    from core.train.settings import GPU_PRESET, preset_settings
    from core.train.shapes import mistral_7b_instruct_v03

    config = mistral_7b_instruct_v03()
    counts = count_parameters(config, preset_settings(GPU_PRESET))
    attention = 8 * 32 * 2048 * 4096
    head = config.vocab_size * config.hidden_size
    assert gpu_check.lora_flops_per_token(config, 2048) == 4 * (counts.quantizable + head) + attention


@pytest.mark.slow  # the 4-bit bench and the recipe on the CPU: ~40 s on a busy 2-core box
def test_dry_run_runs_every_check_on_the_cpu_and_prints_one_table(app_requirements_only):
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=app_requirements_only)  # as a newcomer runs it: no test packages
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows] == ["check", "qlora", "estimate", "recipe", "journey"]
    assert "tokens/s" in rows[1] and "MFU" in rows[1] and "| recipe | PASS |" in rows[3]
