"""The error explainer: each known failure, triggered for real where this machine allows, is explained."""

import json

import pytest

from core.errors import describe
from core.explain import explain
from core.jobs import JobRunner, State


def test_out_of_memory_in_a_job_is_explained_with_advice(workspace):
    runner = JobRunner(workspace)
    folder = workspace.jobs / "oom"
    runner.submit(folder, "tests.job_targets:oom", {}, kind="test", title="OOM")
    job = runner.wait(folder, timeout_s=120)
    assert job.state is State.FAILED
    assert "ran out of memory" in job.error and "batch size" in job.error and "gradient checkpointing" in job.error


def test_fp16_gradients_are_explained():
    import torch

    layer = torch.nn.Linear(4, 4).half()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    scaler.scale(layer(torch.ones(1, 4, dtype=torch.half)).float().sum()).backward()
    with pytest.raises(ValueError) as caught:
        scaler.unscale_(optimizer)
    assert "fp16" in describe(caught.value) and "fp32" in describe(caught.value)


def test_bitsandbytes_without_cuda_is_explained():
    error = RuntimeError("The installed version of bitsandbytes was compiled without GPU support.")
    assert "CUDA" in explain(error).cause and "plain LoRA" in explain(error).fix


def test_missing_and_broken_chat_templates_are_explained(tiny_model_dir):
    from jinja2 import TemplateSyntaxError
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    with pytest.raises(ValueError) as missing:
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "chat template is missing or broken" in describe(missing.value)
    tokenizer.chat_template = "{% for %}"
    with pytest.raises(TemplateSyntaxError) as broken:
        tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert "chat template is missing or broken" in describe(broken.value)


def test_remote_code_model_is_explained(tmp_path):
    from transformers import AutoConfig

    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "evil-custom", "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}}))
    with pytest.raises(ValueError) as caught:
        AutoConfig.from_pretrained(tmp_path)
    assert "ships its own Python code" in describe(caught.value)


def test_no_network_for_a_hub_id_is_explained():
    from huggingface_hub import snapshot_download

    with pytest.raises(Exception) as caught:
        snapshot_download("someone/never-downloaded", local_files_only=True)
    assert "cannot be reached" in describe(caught.value)


def test_disk_full_is_explained():
    with pytest.raises(OSError) as caught:
        with open("/dev/full", "w") as handle:
            handle.write("x")
            handle.flush()
    assert "disk is full" in describe(caught.value) and "earlier files are intact" in describe(caught.value)


def test_unknown_errors_keep_their_type():
    assert describe(KeyError("x")) == "KeyError: 'x'"
