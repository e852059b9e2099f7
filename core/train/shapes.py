"""Model shapes written from their published configs, for estimates and benchmarks without a download.

Contract: `mistral_7b_instruct_v03()` is the config of the 4090 preset's model, value for value as its
`config.json` on the Hub gives it; `preset_card(device)` is that preset's pre-flight card, built on the
meta device (no weights) for a batch of full-length sequences. `bench/gpu_check.py` measures the same
shape on a GPU against this card.
"""

from __future__ import annotations

from typing import Any

from core.devices import DeviceInfo

MISTRAL_7B_INSTRUCT_V03 = dict(
    # mistralai/Mistral-7B-Instruct-v0.3, config.json
    architectures=["MistralForCausalLM"], hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=32768, max_position_embeddings=32768,
    rms_norm_eps=1e-5, rope_theta=1_000_000.0, sliding_window=None, tie_word_embeddings=False, hidden_act="silu",
    bos_token_id=1, eos_token_id=2,
)
RTX_4090 = DeviceInfo(kind="cuda", name="NVIDIA GeForce RTX 4090", accelerator_memory_gb=23.99,
                      compute_capability=(8, 9), bf16=True, cpu_cores=16, ram_gb=64.0, bitsandbytes=True,
                      llama_cpp=True, free_disk_gb=500.0)
"""The card's device: a 24 GB RTX 4090 as `torch.cuda` reports it (23.99 GiB)."""


def mistral_7b_instruct_v03(**changes: Any):
    from transformers import MistralConfig

    return MistralConfig(**{**MISTRAL_7B_INSTRUCT_V03, **changes})


def preset_card(device: DeviceInfo = RTX_4090, **changes: Any) -> tuple[Any, str]:
    """(Plan, Markdown card) of the 4090 preset on Mistral-7B's shape, every sequence max_length long."""
    from core.train import preflight
    from core.train.settings import GPU_PRESET, preset_settings

    settings = preset_settings(GPU_PRESET, **changes)
    plan = preflight.estimate_shape(settings, mistral_7b_instruct_v03(), device)
    return plan, preflight.card(plan)
