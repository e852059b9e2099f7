"""The round-trip check in words, and the recommendation it gates (a quantisation that answers
differently early is not recommended, and the Export tab says why)."""

from __future__ import annotations

import json

from core.export import choices, verdicts
from tests.export_helpers import make_run

PROMPTS = ["What is the capital of France?", "Give me three tips for staying focused.", "Write a haiku about the sea."]


def _report(**first_divergence) -> dict:
    return {"reference": "base+adapter", "prompts": PROMPTS, "max_new_tokens": 24,
            "models": {name: {"agreement": 1.0 if not any(d is not None for d in first) else 0.5,
                              "first_divergence": first} for name, first in first_divergence.items()}}


def test_divergence_reads_as_words():
    assert verdicts.divergence_text([None, None, None]) == "agrees on all prompts"
    assert verdicts.divergence_text([None, 6, None]) == "diverges at token 7 of prompt 2"
    assert verdicts.divergence_text([0, None, 20]) == "diverges at token 1 of prompt 1, token 21 of prompt 3"


def test_early_divergence_moves_the_recommendation_to_the_next_file_that_agrees():
    report = _report(merged=[None] * 3, F16=[None, None, 20], Q8_0=[2, None, None])
    chosen, why = verdicts.gate("Q8_0", report)
    assert chosen == "F16"
    assert why.startswith("Q8_0 is not recommended: its greedy answer to prompt 1 "
                          '("What is the capital of France?") leaves the merged model\'s at token 3.')
    assert "F16 agrees" in why


def test_late_divergence_or_no_report_keeps_the_recommendation():
    assert verdicts.gate("Q8_0", _report(Q8_0=[None, 15, None])) == ("Q8_0", "")
    assert verdicts.gate("Q8_0", None) == ("Q8_0", "")
    assert verdicts.gate("Q4_K_M", _report(Q4_K_M=[0, 1, 2], Q5_K_M=[1, None, None], Q8_0=[None] * 3))[0] == "Q8_0"


def test_even_f16_diverging_is_said_so():
    chosen, why = verdicts.gate("Q8_0", _report(F16=[1, None, None], Q8_0=[0, None, None]))
    assert chosen == "F16" and "Even F16 diverges early" in why


def test_export_tab_preselects_and_explains_the_gated_recommendation(workspace, tiny_model_dir):
    make_run(workspace, tiny_model_dir)
    folder = workspace.exports / "run-1"
    (folder / "gguf").mkdir(parents=True)
    (folder / "gguf" / "manifest.json").write_text(json.dumps({"files": {}, "recommended": "Q8_0"}))
    (folder / "roundtrip.json").write_text(json.dumps(_report(merged=[None] * 3, F16=[None] * 3,
                                                              Q8_0=[None, 3, None])))
    labels, selected, reason = choices.quant_options(workspace, "run-1")
    assert selected == ["F16"] and "recommended" in dict((v, l) for l, v in labels)["F16"]
    assert reason.startswith("Q8_0 is not recommended") and "prompt 2" in reason
    table = choices.roundtrip_markdown(workspace, "run-1")
    assert "None" not in table
    assert "| merged | agrees on all prompts |" in table and "| Q8_0 | diverges at token 4 of prompt 2 |" in table
    assert "Q8_0 is not recommended" in table and "F16 (recommended): agrees on all prompts" in table
