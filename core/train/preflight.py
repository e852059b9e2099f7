"""Pre-flight: what a run will need and cost, before it starts.

Contract: `estimate(settings, workspace, device)` counts parameters and LoRA-trainable parameters on an
empty (meta) copy of the model, so nothing is loaded, tokenises the data to know the real tokens, the
trained share and the longest sample, and estimates peak memory by part: weights at their dtype (or NF4
for what QLoRA quantises, fp32 for the rest), LoRA weights and gradients, optimizer states,
activations of one micro-batch at the longest sample (checkpointed or not), the LM head's logits as the
training path holds them, and the runtime's own footprint. It is compared with what the device has,
and `support.limits` says what will not work for this model. `estimate_shape(settings, config, device)`
does the same for a model known only by its config (the 4090 preset's 7B, see `core.train.shapes`).
`with_probe(plan, tokens_per_s, watts, price)` adds the ETA for the whole run and its energy and money.
The probe itself (a few real steps) is the `core.train.job:probe` job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from core import models
from core.devices import DeviceInfo
from core.train import data, speed, support
from core.train.settings import DEFAULT_WATTS, TrainSettings, resolve_precision
from core.workspace import Workspace

BYTES_PER_WEIGHT = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}
NF4_BYTES = 0.516
"""Bytes per 4-bit weight with double quantisation: 4 bits + an 8-bit scale per 64 weights + fp32 per 256 scales."""
CHUNKED_VOCAB, TOKEN_TILE = 32768, 4096
"""TRL's fused LM head scores logits in tiles of at most this many vocabulary columns and tokens."""
OVERHEAD_GB = {"cpu": 0.75, "cuda": 0.5, "mps": 0.5}
"""Outside the model: on a CPU, Python with torch, transformers, TRL and datasets loaded (measured
resident size, rounded up); on a GPU, the CUDA context and the allocator's slack."""


@dataclass(frozen=True)
class Plan:
    """The pre-flight card's figures."""

    total_params: int
    trainable_params: int
    train_rows: int
    real_tokens_per_epoch: int
    longest: int
    total_steps: int
    memory: dict[str, float]
    """GiB by part: weights, lora, optimizer, activations, logits, overhead and total."""
    device_memory_gb: float
    device_label: str
    tokens_per_s: float | None = None
    eta_s: float | None = None
    watts: float | None = None
    energy_wh: float | None = None
    cost: float | None = None
    currency: str = ""

    @property
    def fits(self) -> bool:
        return self.memory["total"] <= self.device_memory_gb * 0.9

    total_steps_per_epoch: int = 1
    quantized: bool = False
    """Whether the base is held in 4-bit NF4 (QLoRA)."""
    limits: tuple[str, ...] = ()
    """What will not work for this model here (e.g. no GGUF export), said before training."""


def estimate(settings: TrainSettings, workspace: Workspace, device: DeviceInfo, tokenizer: Any = None) -> Plan:
    """The card's figures; pass the model's `tokenizer` when the caller has it loaded already."""
    from transformers import AutoConfig, AutoTokenizer

    model_dir = models.resolve(settings.model, workspace)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
    train_records, _ = data.load_splits(settings.dataset, settings.eval_share, settings.seed)
    _, stats = data.tokenize(tokenizer, train_records, settings.max_length, settings.assistant_only_loss)
    counts = count_parameters(AutoConfig.from_pretrained(model_dir), settings)
    per_epoch = max(1, math.ceil(stats.rows / settings.effective_batch))
    steps = settings.max_steps or math.ceil(per_epoch * settings.epochs)
    trained_share = stats.trained_tokens / stats.tokens if stats.tokens else 1.0
    memory = memory_estimate(settings, counts, stats.longest, trained_share, resolve_precision(settings, device),
                             device.kind)
    return Plan(counts.total, counts.trainable, stats.rows, stats.tokens, stats.longest, steps, memory,
                available_gb(device), device_label(device), total_steps_per_epoch=per_epoch,
                quantized=settings.load_in_4bit, limits=tuple(support.limits(model_dir)))


def estimate_shape(settings: TrainSettings, config: Any, device: DeviceInfo, longest: int | None = None,
                   trained_share: float = 1.0) -> Plan:
    """The card for a model known only by its config (no weights, no tokenizer, no data): every
    micro-batch holds `batch_size` sequences of `longest` tokens (default: max_length)."""
    counts = count_parameters(config, settings)
    longest = min(longest or settings.max_length, settings.max_length)
    memory = memory_estimate(settings, counts, longest, trained_share, resolve_precision(settings, device),
                             device.kind)
    return Plan(counts.total, counts.trainable, 0, 0, longest, settings.max_steps, memory, available_gb(device),
                device_label(device), quantized=settings.load_in_4bit)


def available_gb(device: DeviceInfo) -> float:
    return float((device.accelerator_memory_gb if device.kind != "cpu" else device.ram_gb) or 0.0)


def device_label(device: DeviceInfo) -> str:
    return f"{device.kind.upper()} · {device.name}"


@dataclass(frozen=True)
class ModelCounts:
    """What the memory estimate needs from a model, counted on a weightless copy."""

    total: int
    trainable: int
    """LoRA parameters the settings add."""
    quantizable: int
    """Weights of the linear layers under the LM head: what 4-bit NF4 stores in 4 bits (the rest stays fp32)."""
    config: Any


def count_parameters(config: Any, settings: TrainSettings) -> ModelCounts:
    """All parameters, the LoRA ones `settings` would add and the 4-bit-able ones, on the meta device."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        skeleton = AutoModelForCausalLM.from_config(config)
    skeleton.tie_weights()  # on the meta device tied embeddings start untied and would count twice
    targets = settings.target_modules.strip()
    wanted = None if targets == "all-linear" else {name.strip() for name in targets.split(",")}
    trainable = quantizable = 0
    for name, module in skeleton.named_modules():
        # PEFT's all-linear and bitsandbytes both leave the output layer as it is.
        if not isinstance(module, torch.nn.Linear) or module is skeleton.get_output_embeddings():
            continue
        quantizable += module.weight.numel()
        if wanted is None or name.rsplit(".", 1)[-1] in wanted:
            trainable += settings.lora_rank * (module.in_features + module.out_features)
    total = sum(parameter.numel() for parameter in skeleton.parameters())
    return ModelCounts(total, trainable, quantizable, config)


def memory_estimate(settings: TrainSettings, counts: ModelCounts, longest: int, trained_share: float,
                    precision: str, device_kind: str = "cuda") -> dict[str, float]:
    """Peak memory in GiB by part, for one micro-batch of `batch_size` sequences of `longest` tokens."""
    config = counts.config.get_text_config() if hasattr(counts.config, "get_text_config") else counts.config
    if settings.load_in_4bit:  # prepare_model_for_kbit_training keeps everything not in 4 bits in fp32
        weights = counts.quantizable * NF4_BYTES + (counts.total - counts.quantizable) * 4.0
    else:
        weights = counts.total * BYTES_PER_WEIGHT[precision]
    tokens = settings.batch_size * min(longest, settings.max_length)
    scored = tokens * (trained_share if settings.assistant_only_loss else 1.0)
    parts = {
        "weights": weights,
        "lora": counts.trainable * (4 + 4),  # fp32 weights and their gradients
        "optimizer": counts.trainable * (2 if "8bit" in settings.optimizer else 8),  # Adam's two moments
        "activations": tokens * _activation_bytes_per_token(settings, config, precision),
        "logits": _logits_bytes(scored, config.vocab_size, precision, device_kind),
    }
    gib = {key: value / 2**30 for key, value in parts.items()}
    gib["overhead"] = OVERHEAD_GB.get(device_kind, 0.5)
    gib["total"] = sum(gib.values())
    return {key: round(value, 2) for key, value in gib.items()}


def _activation_bytes_per_token(settings: TrainSettings, config: Any, precision: str) -> float:
    """What backward needs per token: every layer's saved tensors, or with checkpointing each layer's
    input plus one layer recomputed at a time."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    ffn = getattr(config, "intermediate_size", 4 * hidden)
    heads = config.num_attention_heads
    kv = getattr(config, "head_dim", None) or hidden // heads
    kv *= getattr(config, "num_key_value_heads", None) or heads
    # Saved by a decoder layer with LoRA on its linears: norms' inputs and outputs, q/k/v before and after
    # rotary, attention output, the MLP's gate, up, activation and product; dropout keeps its own copies.
    per_layer = 10 * hidden + 4 * ffn + 4 * kv
    if settings.lora_dropout > 0:
        per_layer += 6 * hidden + ffn
    act_bytes = 4 if precision == "fp32" else 2
    stored = (layers * hidden + per_layer) if settings.gradient_checkpointing else layers * per_layer
    return (stored + 4 * hidden) * act_bytes  # + the final norm and the hidden states handed to the head


def _logits_bytes(scored: float, vocab: int, precision: str, device_kind: str) -> float:
    """Peak bytes of the LM head's logits for `scored` trained tokens.

    On CUDA, TRL's Triton head holds one tile of at most 4,096 tokens × 32,768 columns at a time (taken
    as two, for the backward's). Off CUDA, the app keeps small logits whole (`core.train.speed`): five
    copies at the peak, measured (logits, softmax and entropy terms, then their gradients); larger ones
    go through TRL's torch fallback in tiles, measured at eight tile-sized copies.
    """
    if device_kind in ("cuda", "xpu"):
        return 2 * min(scored, TOKEN_TILE) * min(vocab, CHUNKED_VOCAB) * BYTES_PER_WEIGHT[precision]
    if scored * vocab * 4 <= speed.PLAIN_LOGITS_BYTES:
        return 5 * scored * vocab * 4
    return 8 * min(scored, TOKEN_TILE) * min(vocab, CHUNKED_VOCAB) * 4


def with_probe(plan: Plan, tokens_per_s: float, watts: float, price_per_kwh: float, currency: str,
               device_kind: str = "cpu") -> Plan:
    """The ETA of the whole run from a measured speed, and its energy and cost."""
    watts = watts or DEFAULT_WATTS.get(device_kind, 65.0)
    epochs = plan.total_steps / plan.total_steps_per_epoch
    eta = plan.real_tokens_per_epoch * epochs / tokens_per_s if tokens_per_s > 0 else None
    energy = watts * eta / 3600 if eta else None
    cost = energy / 1000 * price_per_kwh if energy is not None else None
    return replace(plan, tokens_per_s=tokens_per_s, eta_s=eta, watts=watts, energy_wh=energy, cost=cost,
                   currency=currency)


def card(plan: Plan) -> str:
    """The pre-flight card as Markdown."""
    memory = plan.memory
    verdict = "✅ fits" if plan.fits else "⚠️ likely out of memory: lower batch size or max length"
    weights = "4-bit NF4 weights" if plan.quantized else "weights"
    lines = [
        f"**Parameters** {_count(plan.total_params)} · **trainable (LoRA)** {plan.trainable_params / 1e6:,.2f}M "
        f"({plan.trainable_params / max(1, plan.total_params):.2%})",
        f"**Memory** ~{memory['total']:.1f} GiB of {plan.device_memory_gb:.0f} GiB on {plan.device_label}: {verdict}",
        f"{weights} {memory['weights']:.2f} + LoRA weights and gradients {memory['lora']:.2f} + optimizer states "
        f"{memory['optimizer']:.2f} + activations {memory['activations']:.2f} (sequences of {plan.longest:,} "
        f"tokens) + logits {memory['logits']:.2f} + runtime {memory['overhead']:.2f} GiB",
    ]
    if plan.train_rows:
        lines.insert(1, f"**Data** {plan.train_rows} conversations · {plan.real_tokens_per_epoch:,} tokens/epoch · "
                        f"longest {plan.longest} · **{plan.total_steps} steps**")
    lines += [f"⚠️ {limit}" for limit in plan.limits]
    if plan.eta_s is not None:
        lines.append(f"**Probe** {plan.tokens_per_s:,.0f} real tokens/s · **ETA** {_duration(plan.eta_s)}")
        lines.append(f"**Energy** ~{plan.energy_wh:.1f} Wh at {plan.watts:.0f} W ≈ {plan.cost:.4f} {plan.currency}")
    return "\n\n".join(lines)


def _count(parameters: int) -> str:
    return f"{parameters / 1e9:.2f}B" if parameters >= 1e9 else f"{parameters / 1e6:,.1f}M"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
