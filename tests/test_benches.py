"""Every bench runs for a newcomer: `--help` and a short smoke run, in a subprocess where only the app's
requirements import (a venv made with the README's set-up command has no pytest, playwright or openai)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.train_bench import PROFILE_KINDS

ROOT = Path(__file__).resolve().parent.parent
BENCHES = sorted(path.name for path in (ROOT / "bench").glob("*.py") if not path.name.startswith("_"))
# (modules named _*.py are what the benches share, not benches)
TINY, TINY_64 = "{tiny}", "{tiny_64}"  # replaced by the tiny test models' folders (see conftest.py)

# bench -> (smoke arguments, a line its report must print). gpu_check's CPU dry run is tested in
# tests/test_gpu_check.py with the same environment.
SMOKE = {
    "data_bench.py": (["--conversations", "300", "--rounds", "1"], "speed-up vs baseline"),
    "dedupe_bench.py": (["--conversations", "200", "--rounds", "1"], "x datasketch's speed"),
    "chat_limits.py": (["--part", "bandwidth", "--model", TINY, "--tokens", "4", "--rounds", "1"],
                       "decode vs memory bandwidth"),
    "evaluate_bootstrap.py": (["--votes", "200", "--models", "3", "--rounds", "20", "--repeats", "1"], "ratio"),
    "retrieval_bench.py": (["--dense", "none", "--scale", "1", "--rounds", "1"], "bm25 vs baseline"),
    "startup.py": (["--repeats", "1"], "ratio:"),
    "train_bench.py": (["--quick", "--model", TINY, "--rows", "8", "--eval-rows", "2"],
                       ("MFU against the best fp32 matmul rate measured in this run", "(quick mode: one repetition")),
    "preference_bench.py": (["--quick", "--model", TINY], "medians over 1 repetitions"),
    "export_bench.py": (["--model", TINY, "--repeats", "1"], "ratio ours / by hand"),
    "chat_bench.py": (["--model", TINY, "--tokens", "4", "--rounds", "1"], "time to first token"),
    "qlora_cpu_bench.py": (["--model", TINY_64, "--steps", "2", "--reps", "1", "--new-tokens", "2"],
                           "training, 4-bit ÷ fp32"),
}
SLOW = {"chat_limits.py", "retrieval_bench.py", "startup.py", "train_bench.py", "preference_bench.py", "export_bench.py", "chat_bench.py",
        "qlora_cpu_bench.py"}


def test_every_bench_answers_help_without_the_test_requirements(app_requirements_only):
    refused = subprocess.run([sys.executable, "-c", "import pytest"], env=app_requirements_only,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "only in requirements-test.txt" in refused.stderr
    assert set(SMOKE) | {"gpu_check.py"} == set(BENCHES), "a new bench needs a smoke run here"
    for bench in BENCHES:
        done = subprocess.run([sys.executable, f"bench/{bench}", "--help"], cwd=ROOT, env=app_requirements_only,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("usage:"), f"{bench}: {done.stderr[-2000:]}"


@pytest.mark.parametrize("bench", [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
                                   for name in sorted(SMOKE)])
def test_bench_smoke_run_without_the_test_requirements(bench, app_requirements_only, tmp_path, request):
    arguments, expected = SMOKE[bench]
    fixtures = {TINY: "tiny_model_dir", TINY_64: "tiny_model_64_dir"}
    arguments = [str(request.getfixturevalue(fixtures[a])) if a in fixtures else a for a in arguments]
    if bench in ("chat_bench.py", "chat_limits.py"):
        arguments += ["--workspace", str(tmp_path / "workspace")]
    done = subprocess.run([sys.executable, f"bench/{bench}", *arguments], cwd=ROOT, env=app_requirements_only,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{bench}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    for line in (expected,) if isinstance(expected, str) else expected:
        assert line in done.stdout, done.stdout[-2000:]


@pytest.mark.slow
def test_train_bench_profile_says_where_the_training_time_goes(app_requirements_only, tiny_model_dir):
    done = subprocess.run([sys.executable, "bench/train_bench.py", "--profile", "--model", str(tiny_model_dir),
                           "--rows", "8", "--eval-rows", "2"], cwd=ROOT, env=app_requirements_only,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    report = done.stdout[done.stdout.index("where the app's training loop spends its time"):]
    shares = {line.split("s  ", 1)[1]: float(line.split("%")[0]) for line in report.splitlines()[1:] if "%" in line}
    assert set(shares) == set(PROFILE_KINDS)
    assert shares[PROFILE_KINDS[0]] > 0 and shares[PROFILE_KINDS[1]] > 0  # the tiny model has both kinds of product
    assert sum(shares.values()) == pytest.approx(100, abs=0.5)
