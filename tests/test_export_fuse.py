"""Fusion: adapters of one base become a new run that loads like any trained run."""

from __future__ import annotations

import json

import pytest

from core.errors import BadInputError
from core.export.fuse import FuseSettings, fuse_runs
from core.export.merge import load_with_adapter, logits, probe_inputs
from core.jobs import JobRunner
from core.train import runs
from tests.export_helpers import make_run


@pytest.fixture
def two_runs(workspace, tiny_model_dir):
    make_run(workspace, tiny_model_dir, name="a", seed=0)
    make_run(workspace, tiny_model_dir, name="b", seed=1)
    return workspace


def test_cat_fusion_with_weights_one_and_zero_reproduces_the_first_adapter(two_runs):
    import torch

    from core.export.run import open_run

    fused = fuse_runs(two_runs, FuseSettings(runs=("a", "b"), weights=(1.0, 0.0), method="cat", name="f"))
    assert [folder.name for folder in runs.run_folders(two_runs, finished=True)][0] == "f"  # Export lists it first
    assert fused.settings == open_run(two_runs, "a").settings
    assert json.loads((fused.folder / runs.FUSION_FILE).read_text())["fused_from"] == ["a", "b"]
    assert [(run.name, run.state) for run in runs.list_runs(two_runs, JobRunner(two_runs))][0] == ("f", "fused")
    model_f, tokenizer = load_with_adapter(fused, two_runs)
    model_a, _ = load_with_adapter(open_run(two_runs, "a"), two_runs)
    model_b, _ = load_with_adapter(open_run(two_runs, "b"), two_runs)
    inputs = probe_inputs(tokenizer)
    assert torch.allclose(logits(model_f, inputs), logits(model_a, inputs), atol=1e-4)
    assert not torch.allclose(logits(model_f, inputs), logits(model_b, inputs), atol=1e-2)


@pytest.mark.parametrize("method", ["linear", "ties", "dare"])
def test_each_method_writes_a_loadable_adapter(two_runs, method):
    fused = fuse_runs(two_runs, FuseSettings(runs=("a", "b"), weights=(0.7, 0.3), method=method))
    assert fused.name == "fused-a-b" and (fused.adapter / "adapter_model.safetensors").is_file()
    model, tokenizer = load_with_adapter(fused, two_runs)
    assert logits(model, probe_inputs(tokenizer)).isfinite().all()


def test_bad_fusion_requests_are_refused(two_runs, tmp_path):
    with pytest.raises(BadInputError, match="at least two"):
        FuseSettings(runs=("a",))
    with pytest.raises(BadInputError, match="weights"):
        FuseSettings(runs=("a", "b"), weights=(1.0,))
    with pytest.raises(BadInputError, match="method"):
        FuseSettings(runs=("a", "b"), method="average")
    runs.write_config(two_runs.runs / "b", runs.read_config(two_runs.runs / "b").with_changes(model="other"))
    with pytest.raises(BadInputError, match="different base models"):
        fuse_runs(two_runs, FuseSettings(runs=("a", "b")))
