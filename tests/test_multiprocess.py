"""Several processes: `accelerate launch` runs the real training command twice, DDP over gloo on a CPU.

accelerate 1.15 starts a single process for `--cpu --num_processes 2` (its CPU multi-process launcher
needs MPI); `--multi_gpu --num_processes 2` starts two through torchrun, and the Trainer's `use_cpu`
(set by the recipe on a CPU) makes them one MULTI_CPU group over gloo. FSDP: see the README's
"What runs where".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.jobs import read_events
from core.train import runs
from tests.train_helpers import tiny_settings

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE = Path(sys.executable).parent / "accelerate"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow  # two processes each load torch and TRL: ~40 s on a busy 2-core box
def test_two_processes_train_one_run_whose_adapter_chats(workspace, tiny_model_dir, version):
    from core import inference

    config = workspace.root / "config.yaml"
    config.write_text(yaml.safe_dump(tiny_settings(tiny_model_dir, version, max_steps=6, batch_size=2,
                                                   save_steps=3, eval_steps=3).to_dict()))
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
               "-m", "core.train", str(config), "--direct", "--name", "ddp", "--workspace", str(workspace.root)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert [path.name for path in workspace.runs.iterdir()] == ["ddp"]  # both processes, one run folder
    run_dir = workspace.runs / "ddp"
    log = (run_dir / "log.txt").read_text()
    assert "2 processes (MULTI_CPU)" in log and log.count("step 6/6: epoch") >= 1
    events = [e for e in read_events(run_dir) if "loss" in e]
    assert [e["step"] for e in events] == [1, 2, 3, 4, 5, 6]  # written once, by the first process
    assert events[0]["epoch"] == pytest.approx(2 * 2 / 40)  # each step took a batch of 2 on each process
    assert events[-1]["loss"] < events[0]["loss"]
    assert [c.name for c in runs.complete_checkpoints(run_dir)] == ["checkpoint-3", "checkpoint-6"]
    assert "finished 6 of 6 steps" in (run_dir / "report.md").read_text()

    choice = {c.id: c for c in inference.list_choices(workspace)}["run/ddp"]
    usage: dict = {}
    greedy = inference.GenerationSettings(temperature=0, max_new_tokens=5, repetition_penalty=1.0)
    list(inference.open_backend(choice, workspace).stream([{"role": "user", "content": "Hi"}], greedy, usage=usage))
    assert usage["completion_tokens"] > 0
