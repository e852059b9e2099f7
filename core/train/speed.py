"""Two speed-ups for padding-free training where flash-attention and Triton are absent (CPU, Apple MPS).

Contract: `attention_for(settings)` names the attention implementation a training model loads with
(registering it on first use), and `score_only_trained_tokens()` makes TRL's fused LM head skip the
positions that carry no loss. Neither changes the loss: `tests/test_train_speed.py` checks the
per-token losses and gradients against the stock path, and `bench/train_bench.py` measures the gain.

1. **Per-sequence attention.** A padding-free batch is one row holding several conversations, told
   apart by `position_ids` restarting at 0. Without flash-attention's variable-length kernel,
   transformers' SDPA path builds a block-diagonal mask over the whole row, so attention costs
   (sum of lengths)² instead of the sum of length². Eight 90-token chats pay 8× the attention they
   need, and the masked kernel is the slow one. `packed_sdpa` runs causal SDPA on each conversation
   alone: the same arithmetic as flash-attention's varlen path, with only torch. Hand-written
   because transformers ships no such path for CPU/MPS; it is registered through its public
   `AttentionInterface`.
2. **Scoring only trained tokens.** TRL's fused LM head projects just the positions whose label is
   not -100 on CUDA/XPU, but every position elsewhere, to keep tile shapes static for ahead-of-time
   compilers (see `trl.trainer.utils.add_fused_lm_head`). CPUs and MPS run eagerly, where static shapes
   buy nothing, and with assistant-only loss half of a chat's positions are masked: the head there
   is 49k-wide matrix products thrown away. TRL decides this with a private predicate;
   the override below is pinned to the TRL version in requirements.txt and checked by the tests.
"""

from __future__ import annotations

from typing import Any

PACKED_SDPA = "chatsmith_packed_sdpa"
PACKED_BATCHING = ("padding_free", "packing")  # the batchings whose rows hold several conversations


def attention_for(settings: Any) -> str | None:
    """The attention implementation for a training model: per-sequence SDPA for packed rows, else the default."""
    if settings.batching not in PACKED_BATCHING:
        return None
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_SDPA, packed_sdpa)
    return PACKED_SDPA


def packed_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                dropout: float = 0.0, position_ids: Any = None, **kwargs: Any) -> tuple[Any, None]:
    """Causal SDPA over each conversation of a packed row; `(batch, tokens, heads, dim)` like transformers' own.

    A row without `position_ids` (generation, or a batch of one) is one causal sequence. Batches with
    padding never get here: `attention_for` only picks this for padding-free and packed batching,
    and transformers builds no padding mask for an implementation it doesn't know.
    """
    import torch
    import torch.nn.functional as F

    length = query.shape[2]
    bounds = [0, length]
    if position_ids is not None and query.shape[0] == 1:
        bounds = (position_ids[0] == 0).nonzero().flatten().tolist() + [length]
        bounds = bounds if bounds[0] == 0 else [0, *bounds]  # a row that starts mid-sequence
    dropout = dropout if module.training else 0.0
    parts = [F.scaled_dot_product_attention(query[:, :, start:end], key[:, :, start:end], value[:, :, start:end],
                                            dropout_p=dropout, is_causal=True, scale=scaling,
                                            enable_gqa=query.shape[1] != key.shape[1])
             for start, end in zip(bounds, bounds[1:]) if end > start]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def score_only_trained_tokens() -> None:
    """Let TRL's fused LM head score only trained positions on every device (see the module docstring)."""
    import trl.trainer.utils as trl_utils

    predicate = trl_utils._use_triton
    if getattr(predicate, "chatsmith", False):
        return

    def compact(device: Any) -> bool:
        return device.type in ("cpu", "mps") or predicate(device)

    compact.chatsmith = True
    trl_utils._use_triton = compact
