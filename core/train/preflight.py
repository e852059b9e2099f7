"""Pre-flight: what a run will need and cost, before it starts.

Contract: `estimate(settings, workspace, device)` counts parameters and LoRA-trainable parameters on an
empty (meta) copy of the model, so nothing is loaded, tokenises the data to know the real tokens and
the longest sample, and estimates peak memory = weights at their dtype or quantisation + LoRA weights,
gradients and optimizer + activations and logits of one batch at the longest sample. It is compared
with what the device has. `with_probe(plan, tokens_per_s, watts, price)` adds the ETA for the whole run
and its energy and money. The probe itself (a few real steps) is the `core.train.job:probe` job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from core import models
from core.devices import DeviceInfo
from core.train import data
from core.train.settings import DEFAULT_WATTS, TrainSettings, resolve_precision
from core.workspace import Workspace

BYTES_PER_WEIGHT = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "nf4": 0.56}  # nf4 incl. its block scales


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
    """GiB by part: weights, lora_and_optimizer, activations, total."""
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


def estimate(settings: TrainSettings, workspace: Workspace, device: DeviceInfo) -> Plan:
    from transformers import AutoTokenizer

    model_dir = models.resolve(settings.model, workspace)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train_records, _ = data.load_splits(settings.dataset, settings.eval_share, settings.seed)
    _, stats = data.tokenize(tokenizer, train_records, settings.max_length, settings.assistant_only_loss)
    total, trainable, config = count_parameters(model_dir, settings)
    per_epoch = max(1, math.ceil(stats.rows / settings.effective_batch))
    steps = settings.max_steps or math.ceil(per_epoch * settings.epochs)
    precision = resolve_precision(settings, device)
    memory = memory_estimate(settings, config, total, trainable, stats.longest, precision)
    available = device.accelerator_memory_gb if device.kind != "cpu" else device.ram_gb
    return Plan(total, trainable, stats.rows, stats.tokens, stats.longest, steps, memory,
                float(available or 0.0), f"{device.kind.upper()} · {device.name}", total_steps_per_epoch=per_epoch)


def count_parameters(model_dir: Any, settings: TrainSettings) -> tuple[int, int, Any]:
    """All parameters and the LoRA ones `settings` would add, counted on a weightless copy."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with init_empty_weights():
        skeleton = AutoModelForCausalLM.from_config(config)
    skeleton.tie_weights()  # on the meta device tied embeddings start untied and would count twice
    targets = settings.target_modules.strip()
    wanted = None if targets == "all-linear" else {name.strip() for name in targets.split(",")}
    trainable = 0
    for name, module in skeleton.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        is_output = module is skeleton.get_output_embeddings()  # PEFT's all-linear skips the output layer
        if isinstance(module, torch.nn.Linear) and not is_output and (wanted is None or leaf in wanted):
            trainable += settings.lora_rank * (module.in_features + module.out_features)
    total = sum(parameter.numel() for parameter in skeleton.parameters())
    return total, trainable, config


def memory_estimate(settings: TrainSettings, config: Any, total: int, trainable: int, longest: int,
                    precision: str) -> dict[str, float]:
    weights = total * BYTES_PER_WEIGHT["nf4" if settings.load_in_4bit else precision]
    optimizer_bytes = 2 if "8bit" in settings.optimizer else 8
    lora = trainable * (4 + 4 + optimizer_bytes)  # fp32 weights, gradients, Adam moments
    tokens = settings.batch_size * min(longest, settings.max_length)
    hidden, layers = config.hidden_size, config.num_hidden_layers
    act_bytes = 4 if precision == "fp32" else 2
    # Per layer and token: ~34 hidden-sized values without checkpointing, ~2 with (Korthikanti et al. 2022).
    per_layer = (2 if settings.gradient_checkpointing else 34) * hidden * act_bytes
    activations = tokens * layers * per_layer
    logits = tokens * config.vocab_size * 4 * 3  # fp32 logits, their softmax and gradient
    parts = {"weights": weights, "lora_and_optimizer": lora, "activations": activations + logits}
    gib = {key: value / 2**30 for key, value in parts.items()}
    gib["total"] = sum(gib.values()) + 0.5  # framework overhead
    return {key: round(value, 2) for key, value in gib.items()}


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
    lines = [
        f"**Parameters** {plan.total_params / 1e6:,.1f}M · **trainable (LoRA)** {plan.trainable_params / 1e6:,.2f}M "
        f"({plan.trainable_params / max(1, plan.total_params):.2%})",
        f"**Data** {plan.train_rows} conversations · {plan.real_tokens_per_epoch:,} tokens/epoch · longest "
        f"{plan.longest} · **{plan.total_steps} steps**",
        f"**Memory** ~{memory['total']:.1f} GiB (weights {memory['weights']:.2f} + LoRA & optimizer "
        f"{memory['lora_and_optimizer']:.2f} + activations {memory['activations']:.2f}) of "
        f"{plan.device_memory_gb:.0f} GiB on {plan.device_label}: {verdict}",
    ]
    if plan.eta_s is not None:
        lines.append(f"**Probe** {plan.tokens_per_s:,.0f} real tokens/s · **ETA** {_duration(plan.eta_s)}")
        lines.append(f"**Energy** ~{plan.energy_wh:.1f} Wh at {plan.watts:.0f} W ≈ {plan.cost:.4f} {plan.currency}")
    return "\n\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
