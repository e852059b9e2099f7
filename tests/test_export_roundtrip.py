"""Round-trip: base + adapter, merged and GGUFs answer the same greedy prompts; bad merges fail loudly."""

from __future__ import annotations

import math
import os
import time

import pytest

from core.export import gguf, merge, roundtrip, verdicts
from core.export.run import open_run
from core.inference.gguf_loader import open_llama
from core.workspace import Workspace
from tests.export_helpers import make_run


def _export(workspace, base_dir, quants, scale=0.5):
    make_run(workspace, base_dir, scale=scale)
    run = open_run(workspace, "run-1")
    merged = merge.merge_run(workspace, run)
    manifest = gguf.export(merged, run.exports / "gguf", run.name, quants)
    files = {q: run.exports / "gguf" / entry["file"] for q, entry in manifest["files"].items()}
    return run, merged, files


@pytest.mark.slow
def test_tiny_round_trip_report_is_measured_once_until_a_file_changes(workspace, tiny_model_dir, monkeypatch):
    run, merged, files = _export(workspace, tiny_model_dir, ["F16"])
    report, kept = roundtrip.ensure_report(workspace, run, merged, files, max_new_tokens=8, log=lambda line: None)
    assert not kept
    assert report["models"]["merged"]["agreement"] == 1.0
    assert report["models"]["merged"]["first_divergence"] == [None, None, None]
    f16 = report["models"]["F16"]
    # Measured here: the F16 GGUF reproduced every greedy token of the merged model. Other CPUs may round a
    # near-tie the other way, so the bound leaves room for that; a wrong conversion agrees on almost nothing.
    assert f16["agreement"] >= 0.5 and all(d is None or d > 0 for d in f16["first_divergence"]), f16
    assert math.isfinite(f16["perplexity"])
    assert (run.exports / "roundtrip.json").is_file()

    # Asked again with nothing changed (the Round-trip button after an export that already checked its files):
    # the written report, said to be up to date, and no model loaded.
    measured, lines = roundtrip.roundtrip, []
    monkeypatch.setattr(roundtrip, "roundtrip", lambda *a, **k: pytest.fail("measured again, though nothing changed"))
    again, kept = roundtrip.ensure_report(workspace, run, merged, files, max_new_tokens=8, log=lines.append)
    assert kept and again["models"] == report["models"] and "up to date" in lines[0]
    # A GGUF written again, or a longer answer asked for, is measured anew.
    monkeypatch.setattr(roundtrip, "roundtrip", measured)
    os.utime(files["F16"], ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not roundtrip.ensure_report(workspace, run, merged, files, max_new_tokens=8, log=lines.append)[1]
    assert roundtrip.ensure_report(workspace, run, merged, files, max_new_tokens=8, log=lines.append)[1]
    assert not roundtrip.ensure_report(workspace, run, merged, files, max_new_tokens=9, log=lines.append)[1]


def test_merged_model_that_answers_differently_fails_loudly(workspace, tiny_model_dir, monkeypatch):
    make_run(workspace, tiny_model_dir)
    run = open_run(workspace, "run-1")
    merged = merge.merge_run(workspace, run)
    real = roundtrip._hf_generate
    calls = []

    def drifting(model, prompts, max_new_tokens, eos):
        calls.append(1)
        outputs = real(model, prompts, max_new_tokens, eos)
        return outputs if len(calls) == 1 else [[t + 1 for t in out] for out in outputs]

    monkeypatch.setattr(roundtrip, "_hf_generate", drifting)
    with pytest.raises(merge.ExportCheckError, match="differ from base \\+ adapter"):
        roundtrip.roundtrip(workspace, run, merged, {}, max_new_tokens=4, log=lambda line: None)


def test_compare_counts_agreement_and_first_divergence(default_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    result = roundtrip.compare([[1, 2, 3, 4], [5, 6]], [[1, 2, 9, 4], [5, 6, 7]], tokenizer)
    assert result["first_divergence"] == [2, 2]
    assert result["agreement"] == round(5 / 7, 4)


@pytest.mark.slow
def test_default_model_check_never_recommends_a_file_that_loses_the_answer(tmp_path, default_model_dir):
    """The real SmolLM2-135M with a small adapter: whatever the check finds, the file it recommends answers
    "What is the capital of France?" token for token as the merged model does, and stops."""
    workspace = Workspace(tmp_path / "ws").ensure()
    run, merged, files = _export(workspace, default_model_dir, ["Q8_0"], scale=0.005)  # small: stays sane
    report = roundtrip.roundtrip(workspace, run, merged, files, max_new_tokens=16, log=lambda line: None)
    print({q: report["models"][q] for q in ("F16", "Q8_0")}, report["reference_texts"])
    # Measured here (Q8_0 quantised from F32): F16 reproduced every token; Q8_0 answered the capital of
    # France with a French loop and the haiku differently from token 1 ("L'Étoile, la Cité…"), agreement
    # 0.33, perplexity 1.015x F16; so the check withdraws the Q8_0 recommendation for F16.
    models = report["models"]
    assert models["merged"]["agreement"] == 1.0 and models["F16"]["agreement"] >= 0.9
    assert "Paris" in report["reference_texts"][0]
    chosen, why = verdicts.gate("Q8_0", report)
    assert models[chosen]["first_divergence"][0] is None, why
    assert (chosen == "Q8_0") == (not verdicts.early_divergences(models["Q8_0"]))
    assert models["Q8_0"]["perplexity_vs_f16"] < 1.05
    llama = open_llama(files[chosen], n_ctx=512, n_threads=1, verbose=False)
    answer = llama.create_chat_completion([{"role": "user", "content": "What is the capital of France?"}],
                                          max_tokens=64, temperature=0.0)
    assert "Paris" in answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] == "stop", "the GGUF must stop at its end-of-turn token"
