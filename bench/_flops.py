"""Model FLOPs of LoRA training and this machine's matrix-product peak, for model FLOPs utilisation (MFU).

MFU = (model FLOPs of the epoch) ÷ (seconds the epoch took) ÷ (peak FLOP/s measured in the same run).

Model FLOPs count the work the task needs, not what an implementation happens to do, so both arms of a bench
are judged against the same numerator: padding, recomputation (gradient checkpointing) and an LM head run on
unscored positions are not counted. For a decoder with width h, MLP width f, L layers, key/value width kv
(head_dim × key/value heads) and vocabulary V, a conversation of T real tokens of which S are scored costs

    frozen linears   4 · T · L · (2h² + 2h·kv + 3h·f)      forward 2 FLOPs per weight and token, backward 2 more
                                                           for the input gradient; frozen weights get no
                                                           weight gradient
    LoRA adapters    6 · T · L · r · Σ(in + out)           forward, input gradient and weight gradient of both
                                                           low-rank factors, over every adapted linear
    attention        6 · L · h · T · (T + 1)               QKᵀ and AV: 4h FLOPs a forward token per attended
                                                           position, ×3 with the backward pass; causal, so a
                                                           token attends to (position + 1) others
    LM head          4 · S · V · h                         forward and input gradient, scored tokens only

The peak is the best fp32 rate of `torch.matmul` over square products and products of the model's own
shapes (a micro-batch's tokens × width × MLP width), with torch's default thread count, which the arms
also use.
"""

from __future__ import annotations

import time


def linear_shapes(config) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear in one decoder layer."""
    h, f = config.hidden_size, config.intermediate_size
    kv = head_dim(config) * config.num_key_value_heads
    return {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h), "gate": (h, f), "up": (h, f), "down": (f, h)}


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def lora_training_flops(config, rows: list[tuple[int, int]], lora_rank: int) -> float:
    """Model FLOPs of one pass of LoRA training over `rows`, each (real tokens, scored tokens), with every
    linear of the decoder adapted (the app's default `all-linear`)."""
    h, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    shapes = linear_shapes(config).values()
    frozen = 4 * layers * sum(i * o for i, o in shapes)
    lora = 6 * layers * lora_rank * sum(i + o for i, o in shapes)
    total = 0.0
    for tokens, scored in rows:
        total += (frozen + lora) * tokens + 6 * layers * h * tokens * (tokens + 1) + 4 * scored * vocab * h
    return total


def matmul_peak_gflops(config, micro_batch_tokens: int = 2048, repeats: int = 5) -> float:
    """The best fp32 matmul rate over square sizes 1024-3072 and the model's own MLP products."""
    import torch

    h, f = config.hidden_size, config.intermediate_size
    shapes = [(n, n, n) for n in (1024, 2048, 3072)]
    shapes += [(micro_batch_tokens, h, f), (micro_batch_tokens, f, h)]
    best = 0.0
    with torch.no_grad():
        for m, k, n in shapes:
            a, b = torch.randn(m, k), torch.randn(k, n)
            a @ b  # first call pays for allocation and thread start-up
            fastest = min(_timed(lambda: a @ b) for _ in range(repeats))
            best = max(best, 2 * m * k * n / fastest / 1e9)
    return best


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started
