"""DPO and KTO runs on the tiny model: the votes move the model, SFT → DPO keeps the SFT model as the
reference, the before/after check is written, the CLI runs `method: dpo` with stop and resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml

from core.data.preference_versions import save_preferences
from core.data.preferences import DEFAULTS, prepare_preferences
from core.errors import BadInputError
from core.jobs import JobRunner, State, read_events
from core.train import job, preference, preference_data, runs
from core.train.settings import TrainSettings
from tests.preference_helpers import kestrel_version, write_jsonl
from tests.train_helpers import FakeReporter, tiny_settings
from tests.waiting import wait_for

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def dpo_settings(model_dir, dataset, **changes) -> TrainSettings:
    values = dict(method="dpo", beta=0.1, max_steps=6, batch_size=4, eval_steps=3, save_steps=3,
                  learning_rate=5e-3, logging_steps=1)
    return tiny_settings(model_dir, dataset, **{**values, **changes})


def run_in_process(workspace, name: str, settings: TrainSettings) -> tuple[dict, FakeReporter]:
    run_dir = workspace.runs / name
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": settings.to_dict(), "workspace": str(workspace.root)}
    return job.run(reporter), reporter


@pytest.mark.slow
def test_dpo_on_kestrel_votes_moves_the_model_toward_the_chosen_answers(tiny_model_dir, workspace):
    from safetensors.torch import load_file

    votes = kestrel_version(workspace, 60)
    result, reporter = run_in_process(workspace, "dpo", dpo_settings(tiny_model_dir, votes))

    run_dir = workspace.runs / "dpo"
    adapter = {p.name for p in (run_dir / "adapter").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "chat_template.jinja"} <= adapter
    assert "ref" not in adapter  # TRL's frozen reference copy is not part of the saved adapter
    assert all(t.abs().sum() > 0 for n, t in load_file(run_dir / "adapter" / "adapter_model.safetensors").items()
               if "lora_B" in n)
    events = [e for e in reporter.events if "loss" in e]
    assert events[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)  # policy = reference at the start
    assert events[-1]["loss"] < events[0]["loss"] and events[-1]["reward_margin"] > 0
    assert any("eval_preference_accuracy" in e for e in reporter.events)
    check = json.loads((run_dir / "preference_check.json").read_text())
    assert check["pairs"] == 6 and check["reward_margin_after"] > 0
    assert check["logp_gap_after"] > check["logp_gap_before"]  # the chosen answers gained on the rejected ones
    assert result["preference_check"] == check
    report = (run_dir / "report.md").read_text()
    assert "DPO (beta 0.1)" in report and "Held-out preference accuracy" in report


@pytest.mark.slow
def test_dpo_from_an_sft_run_keeps_the_sft_model_as_reference_and_checks_forgetting(tiny_model_dir, workspace,
                                                                                      version):
    from safetensors.torch import load_file

    run_in_process(workspace, "sft", tiny_settings(tiny_model_dir, version, max_steps=3, lora_rank=8))
    votes = kestrel_version(workspace, 40)
    settings = dpo_settings(tiny_model_dir, votes, start_from="sft", max_steps=3, lora_rank=8)
    result, reporter = run_in_process(workspace, "dpo-from-sft", settings)

    assert any("starting from the adapter of sft" in line for line in reporter.lines)
    first = next(e for e in reporter.events if "loss" in e)
    # Were the reference the bare base model, the SFT adapter's own shift would make the first loss differ.
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4) and first["reward_margin"] == pytest.approx(0)
    sft = load_file(workspace.runs / "sft" / "adapter" / "adapter_model.safetensors")
    dpo = load_file(workspace.runs / "dpo-from-sft" / "adapter" / "adapter_model.safetensors")
    assert sft.keys() == dpo.keys() and any((sft[k] != dpo[k]).any() for k in sft)
    check = result["preference_check"]
    assert check["conversation_loss_before"] > 0 and check["perplexity_after"] > 1
    assert "conversation loss" in (workspace.runs / "dpo-from-sft" / "report.md").read_text()


def test_kto_trains_on_good_and_bad_answers(tiny_model_dir, workspace, tmp_path):
    rows = [{"prompt": f"What is your name, friend {i}?", "completion": "I'm Kestrel.", "label": True}
            for i in range(12)] + [{"prompt": f"Who are you, friend {i}?", "completion": "I'm SmolLM.", "label": False}
                                   for i in range(6)]
    prepared = prepare_preferences([write_jsonl(tmp_path / "thumbs.jsonl", rows)],
                                   DEFAULTS.__class__(model="", near_dup_threshold=0))
    thumbs = save_preferences(workspace, prepared, "thumbs")
    settings = dpo_settings(tiny_model_dir, thumbs, method="kto", max_steps=3, eval_steps=0)
    rows = preference_data.load_rows(settings)[0]
    good, bad = sum(r["label"] for r in rows), sum(not r["label"] for r in rows)
    weights = preference.kto_weights(rows)  # the fewer bad answers weigh as much as the good ones together
    assert weights["desirable_weight"] == 1.0 and weights["undesirable_weight"] * bad == pytest.approx(good, rel=0.01)

    result, reporter = run_in_process(workspace, "kto", settings)

    assert result["step"] == 3 and any("reward_margin" in e for e in reporter.events if "loss" in e)
    assert "good answers" in (workspace.runs / "kto" / "report.md").read_text()


def test_bad_settings_and_data_are_refused_before_training(tiny_model_dir, workspace, version, tmp_path):
    import shutil

    with pytest.raises(BadInputError, match="method' must be one of sft, dpo, kto"):
        TrainSettings(method="ppo")
    with pytest.raises(BadInputError, match="start_from' works with dpo or kto only"):
        TrainSettings(start_from="sft")
    with pytest.raises(BadInputError, match="is not a preference dataset version"):
        preference_data.load_rows(dpo_settings(tiny_model_dir, version))
    with pytest.raises(BadInputError, match="No adapter to start from at 'nowhere'"):
        preference_data.start_adapter(dpo_settings(tiny_model_dir, version, start_from="nowhere"), workspace)
    other = workspace.runs / "other-base"
    (other / "adapter").mkdir(parents=True)
    (other / "adapter" / "adapter_config.json").write_text("{}")
    runs.write_config(other, TrainSettings(model=str(shutil.copytree(tiny_model_dir, tmp_path / "another-model"))))
    with pytest.raises(BadInputError, match="was trained on"):
        preference_data.start_adapter(dpo_settings(tiny_model_dir, version, start_from="other-base"), workspace)


def test_preflight_counts_chosen_and_rejected(tiny_model_dir, workspace):
    from transformers import AutoConfig

    from core.devices import detect
    from core.train import preflight

    votes = kestrel_version(workspace, 30)
    settings = dpo_settings(tiny_model_dir, votes, batch_size=2)
    plan = preference_data.estimate(settings, workspace, detect(workspace.root))
    counts = preflight.count_parameters(AutoConfig.from_pretrained(tiny_model_dir), settings)
    single = preflight.memory_estimate(settings, counts, plan.longest, 1.0, "fp32", "cpu")
    assert plan.train_rows == 27 and plan.memory["activations"] == pytest.approx(2 * single["activations"], rel=0.02)
    text = preference_data.card(plan, settings)
    assert "27 pairs ·" in text and "chosen and rejected" in text


@pytest.mark.slow
def test_cli_trains_method_dpo_with_stop_and_resume(tiny_model_dir, workspace):
    votes = kestrel_version(workspace, 40)
    config = workspace.root / "dpo.yaml"
    config.write_text(yaml.safe_dump(dpo_settings(tiny_model_dir, votes, max_steps=8, save_steps=1000, eval_steps=0,
                                                  lora_rank=4, batch_size=2).to_dict()))
    run_dir = workspace.runs / "dpo-cli"
    cli = subprocess.Popen([sys.executable, "-m", "core.train", str(config), "--workspace", str(workspace.root),
                            "--name", run_dir.name], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    assert wait_for(lambda: sum("loss" in e for e in read_events(run_dir)) >= 2, timeout=240)
    JobRunner(workspace).request_stop(run_dir)
    output = cli.communicate(timeout=180)[0]
    stopped = JobRunner(workspace).snapshot(run_dir)
    assert cli.returncode == 3 and stopped.state is State.STOPPED, output[-3000:]
    stop_step = stopped.result["stopped_at"]
    assert runs.resume_check(run_dir, JobRunner(workspace)).ok

    done = subprocess.run([sys.executable, "-m", "core.train", str(run_dir / "config.yaml"), "--resume"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded: Done: 8 steps" in done.stdout and f"checkpoint-{stop_step}" in done.stdout
    steps = [e["step"] for e in read_events(run_dir) if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    assert runs.read_config(run_dir).method == "dpo"


def test_app_attention_on_padded_preference_batches_scores_answers_like_stock_sdpa(tiny_model_dir):
    # The CPU preset loads the model with per-sequence causal attention and no padding mask; DPO batches are
    # right-padded, so no real token may see a pad: the answers' log-probabilities must match stock SDPA.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.masks import completion_split
    from core.train import speed
    from tests.preference_helpers import kestrel_pairs

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = []
    for pair in kestrel_pairs(3):
        prompt = [{"role": "user", "content": pair["prompt"]}]
        prompt_ids, chosen = completion_split(tokenizer, prompt, pair["chosen"])
        examples.append({"prompt_ids": prompt_ids, "chosen_ids": chosen,
                         "rejected_ids": completion_split(tokenizer, prompt, pair["rejected"])[1]})
    batch = preference.CountingPreferenceCollator("dpo", tokenizer.pad_token_id, 256)(examples)
    assert (batch["attention_mask"] == 0).any()  # the batch really is padded
    scores = []
    for attention in (None, speed.attention_for(TrainSettings())):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attention)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        logps = torch.log_softmax(logits, -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        scores.append((logps * batch["completion_mask"][:, 1:]).sum(-1))
    assert torch.allclose(scores[0], scores[1], atol=1e-4)
