"""Merging an adapter: the merged model must answer exactly like base + adapter, or nothing is written."""

from __future__ import annotations

import pytest

from core.errors import CorruptFileError, UnsafeModelError
from core.export import merge
from core.export.run import open_run
from tests.export_helpers import make_run


def test_merged_logits_match_base_plus_adapter(workspace, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_run(workspace, tiny_model_dir)
    run = open_run(workspace, "run-1")
    out = merge.merge_run(workspace, run)

    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = merge.probe_inputs(tokenizer)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        plain = base(**inputs).logits
        adapted = PeftModel.from_pretrained(base, run.adapter)(**inputs).logits
        merged = AutoModelForCausalLM.from_pretrained(out)(**inputs).logits
    assert (adapted - plain).abs().max() > 1e-2, "the test adapter must change the outputs"
    assert torch.allclose(merged, adapted, atol=1e-4)
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template
    assert not list(out.glob("*.bin")), "merged weights must be safetensors only"


def test_merge_mismatch_fails_loudly_and_writes_nothing(workspace, tiny_model_dir, monkeypatch):
    make_run(workspace, tiny_model_dir)
    run = open_run(workspace, "run-1")
    monkeypatch.setattr(merge, "logits", _shifting_logits(merge.logits))
    with pytest.raises(merge.ExportCheckError, match="disagrees with base"):
        merge.merge_run(workspace, run)
    assert not merge.merged_dir(run).exists()


def test_pickle_only_adapter_is_refused(workspace, tiny_model_dir):
    folder = make_run(workspace, tiny_model_dir)
    weights = folder / "adapter" / "adapter_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(UnsafeModelError, match="pickle"):
        open_run(workspace, "run-1")


def test_truncated_adapter_is_reported_corrupt(workspace, tiny_model_dir):
    folder = make_run(workspace, tiny_model_dir)
    weights = folder / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match="corrupt or incomplete"):
        open_run(workspace, "run-1")


def _shifting_logits(real):
    calls = []

    def fake(model, inputs):
        calls.append(1)
        result = real(model, inputs)
        return result + (len(calls) - 1) * 5.0  # the second ("merged") call disagrees

    return fake


def test_a_run_name_means_the_workspace_run_even_if_the_cwd_has_that_folder(workspace, tiny_model_dir,
                                                                              tmp_path, monkeypatch):
    make_run(workspace, tiny_model_dir, name="bench")
    (tmp_path / "bench").mkdir()
    monkeypatch.chdir(tmp_path)
    assert open_run(workspace, "bench").folder == (workspace.runs / "bench").resolve()


def test_a_base_stored_in_4bit_is_refused_rather_than_merged_into_its_rounded_weights(workspace, tiny_model_dir,
                                                                                      tmp_path):
    import json
    import shutil

    from core.errors import BadInputError

    base = shutil.copytree(tiny_model_dir, tmp_path / "base-bnb-4bit")
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(config))
    folder = make_run(workspace, tiny_model_dir)
    (folder / "config.yaml").write_text((folder / "config.yaml").read_text().replace(str(tiny_model_dir), str(base)))
    with pytest.raises(BadInputError, match="stored quantised"):
        merge.merge_run(workspace, open_run(workspace, "run-1"))
    assert not merge.merged_dir(open_run(workspace, "run-1")).exists()
