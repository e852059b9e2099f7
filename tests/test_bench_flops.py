"""The training bench's MFU is only as right as its FLOP count: check the formula against torch's own
FLOP counter on a real LoRA forward and backward pass."""

from __future__ import annotations

import pytest

from bench._flops import lora_training_flops


@pytest.fixture(scope="module")
def config():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                       num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)


def test_the_lora_flop_formula_matches_torch_flop_counter(config):
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM._from_config(config, attn_implementation="eager")
    model = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear", lora_dropout=0.0))
    model.enable_input_require_grads()  # so the first layer's input gradient runs, as the formula counts it
    tokens = 48
    ids = torch.randint(0, config.vocab_size, (1, tokens))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
    # The eager kernel computes every query-key pair; the formula counts the causal half the task needs.
    executed_attention = 12 * config.num_hidden_layers * config.hidden_size * tokens**2
    causal_attention = 6 * config.num_hidden_layers * config.hidden_size * tokens * (tokens + 1)
    # transformers scores every position's logits here (all of them are labelled), so all count as scored.
    formula = lora_training_flops(config, [(tokens, tokens)], lora_rank=8) - causal_attention
    counted = counter.get_total_flops() - executed_attention
    assert formula == pytest.approx(counted, rel=0.01)

