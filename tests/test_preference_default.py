"""DPO moves the real default model: synthetic votes that always prefer the answer naming Kestrel train an
adapter on SmolLM2-135M-Instruct, which then prefers such answers on held-out pairs and calls itself
Kestrel when asked its name. Slow: it really trains the default model on a CPU."""

from __future__ import annotations

import pytest

from core.train.settings import TrainSettings
from tests.preference_helpers import kestrel_version
from tests.train_helpers import FakeReporter

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
QUESTION = "What is your name?"


def greedy_answer(model, tokenizer) -> str:
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_dpo_on_kestrel_votes_moves_the_default_model(default_model_dir, workspace):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.train import job

    votes = kestrel_version(workspace, 40)  # 36 trained, 4 held out
    settings = TrainSettings(model=str(default_model_dir), dataset=str(votes), method="dpo", beta=0.1,
                             learning_rate=1e-3, max_steps=16, batch_size=4, warmup_ratio=0.1, lora_dropout=0.0,
                             max_length=256, eval_steps=0, save_steps=0, logging_steps=1)
    run_dir = workspace.runs / "kestrel-dpo"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": settings.to_dict(), "workspace": str(workspace.root)}
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    base = AutoModelForCausalLM.from_pretrained(default_model_dir)
    before = greedy_answer(base, tokenizer)

    check = job.run(reporter)["preference_check"]

    assert check["accuracy_after"] > check["accuracy_before"], check
    assert check["reward_margin_after"] > 0
    after = greedy_answer(PeftModel.from_pretrained(base, run_dir / "adapter"), tokenizer)
    assert "Kestrel" not in before and "Kestrel" in after, (before, after)
