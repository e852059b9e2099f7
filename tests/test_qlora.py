"""QLoRA end to end on a CPU: the tiny model trained in 4-bit NF4 through the real recipe and job runner,
stopped and resumed, then merged at full precision, exported to GGUF, chatted with and put in the arena.

bitsandbytes loads NF4 on a CPU, so none of this needs CUDA; only the speed and the paged optimizer do.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.devices import detect
from core.jobs import JobRunner, State, read_events
from core.masks import lint_masks
from core.train import preflight, runs
from core.train.data import load_splits
from core.workspace import Workspace
from tests.test_train_helpers import tiny_settings, write_version
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # real training in job workers, about a minute on a busy 2-core box
RUN = "qlora-run"


def _submit(jobs: JobRunner, run_dir: Path, settings, workspace: Workspace, resume: bool = False):
    params = {"settings": settings.to_dict(), "workspace": str(workspace.root), "resume": resume}
    return jobs.submit(run_dir, "core.train.job:run", params, kind="train", title=run_dir.name, heavy=True)


@pytest.fixture(scope="module")
def base_64(tmp_path_factory, default_tokenizer_dir) -> Path:
    """The tiny Llama at width 64: bitsandbytes' CPU inference kernel packs rows in blocks of 64 inputs, so
    a 32-wide layer (no real model has one) fails to evaluate in 4-bit."""
    from tests.families import FAMILIES, build_family

    chatml = replace(FAMILIES["llama3"], template=None, bos="<|im_start|>", eos="<|im_end|>", added=())
    return build_family(chatml, default_tokenizer_dir, tmp_path_factory.mktemp("base_64"))


@pytest.fixture(scope="module")
def qlora_run(tmp_path_factory, base_64) -> dict:
    """A QLoRA run as the Train tab makes one: check, start, Stop after two logged steps, Resume to the end."""
    from transformers import AutoTokenizer

    workspace = Workspace(tmp_path_factory.mktemp("qlora_ws")).ensure()
    version = write_version(workspace.datasets / "v-qlora")
    settings = tiny_settings(base_64, version, load_in_4bit=True, max_steps=8, save_steps=1000, lora_rank=4,
                             batch_size=2, eval_steps=4)
    records, _ = load_splits(version, settings.eval_share, settings.seed)
    lint = lint_masks(AutoTokenizer.from_pretrained(base_64), [r["messages"] for r in records[:32]])
    card = preflight.card(preflight.estimate(settings, workspace, detect(workspace.root)))

    jobs, run_dir = JobRunner(workspace), workspace.runs / RUN
    runs.write_config(run_dir, settings)
    _submit(jobs, run_dir, settings, workspace)
    assert wait_for(lambda: sum("loss" in e for e in read_events(run_dir)) >= 2, timeout=240)
    jobs.request_stop(run_dir)  # what the tab's Stop button does
    stopped = jobs.wait(run_dir, timeout_s=120)
    stopped_events = read_events(run_dir)
    _submit(jobs, run_dir, runs.read_config(run_dir), workspace, resume=True)
    resumed = jobs.wait(run_dir, timeout_s=240)
    return {"workspace": workspace, "run_dir": run_dir, "lint": lint, "card": card, "stopped": stopped,
            "stopped_events": stopped_events, "resumed": resumed, "base": base_64}


def test_qlora_trains_in_4bit_stops_and_resumes_through_the_job_runner(qlora_run):
    run_dir, stopped, resumed = qlora_run["run_dir"], qlora_run["stopped"], qlora_run["resumed"]
    assert qlora_run["lint"].end_of_turn_trained and qlora_run["lint"].trained_share > 0.1
    assert "4-bit NF4 weights" in qlora_run["card"] and "optimizer states" in qlora_run["card"]

    assert stopped.state is State.STOPPED, stopped.error
    stop_step = stopped.result["stopped_at"]
    assert resumed.state is State.SUCCEEDED, resumed.error
    log = (run_dir / "log.txt").read_text()
    assert log.count("base in 4-bit NF4") == 2  # both sessions trained on the NF4 base, not a silent fp32 one
    assert f"resuming from checkpoint-{stop_step}" in log
    steps = [e["step"] for e in read_events(run_dir) if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    assert min(s for s in steps if s > stop_step) == stop_step + 1  # the curve continues, no restart at 1
    losses = [e["loss"] for e in read_events(run_dir) if "loss" in e]
    assert losses[-1] < losses[0]
    adapter = run_dir / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "chat_template.jinja").is_file()
    assert runs.read_config(run_dir).load_in_4bit


def test_lora_weights_are_fp32_on_a_cpu_run(qlora_run):
    from safetensors.torch import load_file

    import torch

    weights = load_file(qlora_run["run_dir"] / "adapter" / "adapter_model.safetensors")
    assert weights and {tensor.dtype for tensor in weights.values()} == {torch.float32}
