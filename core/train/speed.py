"""Speed-ups for padding-free training where flash-attention and Triton are absent (CPU, Apple MPS).

Contract: `attention_for(settings)` names the attention implementation a training model loads with
(registering it on first use), `fast_lm_head(trainer)` makes that trainer's fused LM head skip the
positions that carry no loss, and keep small logits rather than recompute them, and `fast_lora(model)` adds
each LoRA layer's update inside its matrix product. None of this changes the loss:
`tests/test_train_speed.py` checks the logits, losses and gradients against the stock path, and
`bench/train_bench.py` measures the gain.

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
   is 49k-wide matrix products thrown away. TRL decides this with a private predicate, and offers no
   option for it, so the app hands its own trainer's forward a predicate and a log-prob function of
   its own (see `fast_lm_head`): no other model or trainer in the process sees them. This borrows TRL's
   internals by name, pinned to the TRL version in requirements.txt; `tests/test_train_speed.py` fails
   loudly if a TRL release renames them, and the app then falls back to TRL's own head, with a note.
3. **Plain logits for a small head.** TRL's head recomputes each logits tile in the backward pass so it
   never holds the `(tokens, vocab)` logits: right for a 7B run on a GPU, where they take gigabytes,
   but on a CPU the trained tokens of a micro-batch make tens of megabytes, and recomputing costs a
   third matrix product. Below `PLAIN_LOGITS_BYTES`, and off CUDA/XPU (where TRL's Triton kernel is
   the fast path), `_LogProbs` keeps the logits and lets autograd do two.
4. **LoRA's update inside its matrix product.** PEFT adds a layer's update as
   `result + lora_B(lora_A(x)) * scaling`: after the rank-r product, a scaling pass and a sum over the
   layer's whole output, and another pass backward, in every adapted layer (seven per block with
   all-linear). BLAS does both in the product itself (`addmm`'s alpha and beta), written in place into
   the frozen layer's output, which that layer's backward never reads. On a CPU the app's training arm
   of `bench/train_bench.py` ran 1.06-1.14x faster for it, in alternating pairs. Hand-written because
   PEFT has no option for it; `fast_lora` binds it to one model's plain LoRA layers, and any case it
   does not cover (dropout, several or disabled adapters, DoRA and other variants, autocast, mixed
   dtypes, a GPU) takes PEFT's own forward.
"""

from __future__ import annotations

import functools
import types
from typing import Any

PACKED_SDPA = "chatsmith_packed_sdpa"
PACKED_BATCHING = ("padding_free", "packing")  # the batchings whose rows hold several conversations
PLAIN_LOGITS_BYTES = 256 * 2**20
"""Largest fp32 `(trained tokens, vocab)` logits kept whole: 256 MB, ~1,300 tokens of a 49k vocabulary."""


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


def fast_lora(model: Any) -> str:
    """Point 4 for each plain LoRA linear layer of `model` (a PEFT model); says what it did."""
    from peft.tuners.lora.layer import Linear
    from torch import nn

    device = next(model.parameters()).device.type
    layers = [m for m in model.modules() if type(m) is Linear and type(m.base_layer) is nn.Linear]
    if device not in ("cpu", "mps") or not layers:
        return f"LoRA's update added by PEFT ({'on ' + device if layers else 'no plain LoRA linear layers'})"
    for layer in layers:
        layer.forward = types.MethodType(_lora_forward, layer)
    return f"LoRA's update added inside its matrix product in {len(layers)} layers"


def _lora_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """PEFT's `lora.Linear.forward` with the scaling and the sum of vanilla LoRA done by `addmm_`."""
    import torch
    from torch import nn

    peft_forward = type(self).forward  # this instance's binding shadows only its own attribute

    adapters = self.active_adapters
    if (args or kwargs or self.disable_adapters or self.merged or len(adapters) != 1 or self.lora_variant
            or x.device.type not in ("cpu", "mps") or torch.is_autocast_enabled(x.device.type)):
        return peft_forward(self, x, *args, **kwargs)
    lora_a, lora_b = self.lora_A[adapters[0]], self.lora_B[adapters[0]]
    if (not isinstance(self.lora_dropout[adapters[0]], nn.Identity) or lora_b.bias is not None
            or not x.dtype == lora_a.weight.dtype == self.base_layer.weight.dtype):
        return peft_forward(self, x, *args, **kwargs)
    result = self.base_layer(x).contiguous()  # the same tensor when it already is, as nn.Linear's output
    low_rank = lora_a(x)
    result.view(-1, result.shape[-1]).addmm_(low_rank.view(-1, low_rank.shape[-1]), lora_b.weight.t(),
                                             alpha=self.scaling[adapters[0]])
    return result


TRL_NAMES = ("_use_triton", "_ChunkedLogProbFunction")
"""The names TRL's fused forward looks up in its module at call time, which `fast_lm_head` rebinds."""


def fast_lm_head(trainer: Any) -> str:
    """Give `trainer`'s fused LM head (and its reference model's) points 2 and 3 above; says what it did.

    TRL's `add_fused_lm_head` sets `model.forward` to a function that reads `TRL_NAMES` from TRL's module.
    A copy of that function reading them from its own globals is bound to this trainer's models only,
    once, so TRL's module and any other model in the process keep TRL's behaviour.
    """
    import trl

    models = [trainer.model, getattr(trainer, "ref_model", None)]
    fused = [_base(model) for model in models if model is not None]
    functions = [getattr(model.forward, "__func__", None) for model in fused]
    if not functions or not all(f and set(TRL_NAMES) <= set(f.__code__.co_names) for f in functions):
        return f"TRL {trl.__version__}: its fused LM head is not where this app expects it; TRL's own is used"
    for model, function in zip(fused, functions):
        model.forward = types.MethodType(_with_own_head(function), model)
    return f"TRL {trl.__version__}: fused LM head scores trained tokens only on a CPU or Apple GPU"


def _base(model: Any) -> Any:
    """The model TRL added its fused head to: under PEFT, the base model."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _with_own_head(function: Any) -> Any:
    """`function` (TRL's fused forward) reading this module's predicate and log-prob function instead of TRL's."""
    trl_use_triton = function.__globals__["_use_triton"]

    def compact(device: Any) -> bool:
        return device.type in ("cpu", "mps") or trl_use_triton(device)

    names = {**function.__globals__, "_use_triton": compact,
             "_ChunkedLogProbFunction": _LogProbs.over(function.__globals__["_ChunkedLogProbFunction"])}
    own = types.FunctionType(function.__code__, names, function.__name__, function.__defaults__,
                             function.__closure__)
    own.__kwdefaults__ = function.__kwdefaults__
    return functools.update_wrapper(own, function)  # `generate` validates its kwargs against the signature


class _LogProbs:
    """TRL's `ChunkedLogProbFunction.apply`, computed from whole logits when they are small (see above)."""

    chunked: Any = None

    @classmethod
    def over(cls, chunked: Any) -> type:
        """This class, falling back to TRL's `chunked` function for large or GPU logits."""
        cls.chunked = chunked
        return cls

    @classmethod
    def apply(cls, hidden: Any, weight: Any, bias: Any, targets: Any, temperature: float, chunk_size: int,
              softcap: float | None = None, logit_scale: float = 1.0, outputs: tuple[str, ...] = ("log_probs",)):
        import torch
        import torch.nn.functional as F

        whole_bytes = hidden.shape[0] * weight.shape[0] * 4
        if (hidden.device.type not in ("cpu", "mps") or whole_bytes > PLAIN_LOGITS_BYTES
                or set(outputs) - {"log_probs", "entropy", "is_top1"}):
            return cls.chunked.apply(hidden, weight, bias, targets, temperature, chunk_size, softcap, logit_scale,
                                     outputs)
        # The order of TRL's own transform. Each step is a pass over (tokens × vocabulary) floats forward and
        # another backward, so the ones that change nothing (a scale or temperature of 1) are skipped.
        logits = F.linear(hidden, weight, bias).float()
        if logit_scale != 1.0:
            logits = logits * logit_scale
        if softcap is not None:
            logits = softcap * torch.tanh(logits / softcap)
        if temperature != 1.0:
            logits = logits / temperature
        # One fused kernel each way, where log-sum-exp and a subtraction took several passes.
        all_log_probs = F.log_softmax(logits, dim=-1)
        log_probs = all_log_probs.gather(-1, targets[:, None]).squeeze(-1)
        entropy = is_top1 = None
        with torch.no_grad():  # metrics only, as in TRL
            if "entropy" in outputs:
                entropy = -(all_log_probs.exp() * all_log_probs).sum(-1)
            if "is_top1" in outputs:
                is_top1 = logits.argmax(dim=-1) == targets
        return log_probs, entropy, None, None, is_top1
