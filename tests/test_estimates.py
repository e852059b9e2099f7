"""Memory estimates, checked: the 4090 preset's card for Mistral-7B's exact shape (no download), and
the estimator against the peak RSS of a real run measured with psutil."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml

from core.devices import detect
from core.train import preflight
from tests.train_helpers import tiny_settings

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
LONG_ANSWER = "The sea is wide and the tide comes in twice a day, so walkers check the tables first. " * 12


def test_the_4090_card_counts_mistral_7b_on_the_meta_device():
    import psutil

    from core.train.shapes import preset_card

    before = psutil.Process().memory_info().rss
    plan, card = preset_card()

    assert psutil.Process().memory_info().rss - before < 300 * 2**20  # a shape, not 14 GB of weights
    assert plan.total_params == 7_248_023_552  # Mistral-7B-v0.3: 32 × 218.1M + two 134.2M embeddings
    assert plan.trainable_params == 41_943_040  # r=16 on the seven linears of 32 layers
    memory = plan.memory
    assert memory["weights"] == pytest.approx(6.98e9 * 0.516 / 2**30 + 0.27e9 * 4 / 2**30, abs=0.05)
    assert memory["optimizer"] < memory["lora"] / 3  # paged 8-bit AdamW: 2 bytes a parameter
    assert memory["activations"] > memory["logits"]  # seq 2048 × 4 with checkpointing
    assert plan.fits and 8 < memory["total"] < 16
    assert "7.25B" in card and "4-bit NF4 weights" in card and "sequences of 2,048 tokens" in card


@pytest.mark.slow  # a real run in a subprocess, sampled every 10 ms: ~30 s on a busy 2-core box
def test_the_estimate_holds_within_a_quarter_of_the_peak_rss_of_a_real_run(workspace, tmp_path,
                                                                           default_tokenizer_dir):
    import psutil
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    # Small enough to train in seconds, big enough that the model's part (logits of a 49k vocabulary,
    # activations of 8 × ~300 tokens: ~2.4 GiB) outweighs the libraries' resident size (~0.75 GiB).
    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=4, max_position_embeddings=2048, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    version = workspace.datasets / "v-long"
    version.mkdir()
    (version / "train.jsonl").write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"Question {i}: tell me about the sea."},
        {"role": "assistant", "content": LONG_ANSWER[: len(LONG_ANSWER) - i]}]}) + "\n" for i in range(24)))
    settings = tiny_settings(tmp_path / "model", version, max_steps=3, batch_size=8, max_length=1024, eval_share=0.0,
                             save_steps=0, learning_rate=1e-3)
    estimate = preflight.estimate(settings, workspace, detect(workspace.root)).memory["total"]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(settings.to_dict()))

    run = subprocess.Popen([sys.executable, "-m", "core.train", str(config_file), "--direct", "--name", "measured",
                            "--workspace", str(workspace.root)], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    peak, process = 0, psutil.Process(run.pid)
    while run.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.Error:  # the process ended between poll() and the read
            pass
        time.sleep(0.01)
    output = run.stdout.read()

    assert run.returncode == 0, output[-3000:]
    assert 0.75 <= (peak / 2**30) / estimate <= 1.25, f"peak RSS {peak / 2**30:.2f} GiB, estimate {estimate:.2f} GiB"
