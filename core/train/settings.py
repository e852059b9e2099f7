"""Training settings and presets: one frozen dataclass holds everything a run needs to repeat.

`TrainSettings` is what `config.yaml` in a run folder holds and what the Train tab's widgets default
from. Every field is checked in `__post_init__`, which raises `BadInputError` with text the UI shows as
is. Presets are partial settings with the device they need; `preset_gate` says whether this machine can
run one and, if not, why (the tab greys it out with that reason).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from core.devices import Capabilities, DeviceInfo, Gate, quantized_runnable
from core.errors import BadInputError, CapabilityError

BATCHING = ("padding_free", "length_grouped", "packing", "padded")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULERS = ("cosine", "linear", "constant_with_warmup", "constant")
OPTIMIZERS = ("adamw_torch", "paged_adamw_8bit", "adamw_8bit")
METHODS = ("sft", "dpo", "kto")
DEFAULT_WATTS = {"cuda": 300.0, "mps": 30.0, "cpu": 65.0}  # stated draw where NVML cannot measure; editable


@dataclass(frozen=True)
class TrainSettings:
    """Everything one LoRA/QLoRA run needs; written to `config.yaml` so the run repeats headless."""

    model: str = "default"
    """Base model: "default" (SmolLM2-135M-Instruct), a local folder or a Hub id like org/name."""
    dataset: str = ""
    """Dataset version folder holding train.jsonl (and validation.jsonl), as made by the Data tab."""
    lora_rank: int = 16
    """LoRA rank r: higher = more capacity, more memory and slower steps."""
    lora_alpha: int = 32
    """LoRA scale numerator (the update is scaled by alpha / r); 2 × rank is the usual choice."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path; 0 for tiny datasets you want memorised."""
    target_modules: str = "all-linear"
    """Which layers get adapters: "all-linear", or comma-separated names such as "q_proj,v_proj"."""
    load_in_4bit: bool = False
    """QLoRA: keep the base weights in 4-bit NF4 (bitsandbytes) to fit 7B models in 24 GB of VRAM."""
    max_length: int = 1024
    """Longest tokenised conversation; longer ones are cut (the cut is counted in the log)."""
    epochs: float = 1.0
    """Passes over the training set; ignored when max_steps > 0."""
    max_steps: int = 0
    """Optimizer steps to run; 0 means use epochs."""
    learning_rate: float = 2e-4
    """Peak learning rate of the LoRA weights; LoRA tolerates ~10× full fine-tuning's rates."""
    scheduler: str = "cosine"
    """Learning-rate schedule after warmup: cosine, linear, constant_with_warmup or constant."""
    warmup_ratio: float = 0.03
    """Share of the steps spent warming the learning rate up from 0."""
    batch_size: int = 8
    """Conversations per device per forward pass."""
    grad_accum: int = 1
    """Forward passes per optimizer step; the effective batch is batch_size × grad_accum."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: ~30 % slower, much less memory (on for 7B)."""
    batching: str = "padding_free"
    """How conversations share a batch: padding_free (concatenated, no pad tokens), length_grouped
    (similar lengths padded together), packing (BFD into max_length rows) or padded (TRL's default)."""
    assistant_only_loss: bool = True
    """Learn only from assistant turns (every turn, with its end-of-turn token); off = whole text."""
    eval_share: float = 0.1
    """Share of train.jsonl held out for eval loss when the version has no validation.jsonl."""
    eval_steps: int = 50
    """Evaluate every N steps (and at the end); 0 = only at the end."""
    save_steps: int = 50
    """Save a resumable checkpoint every N steps; Stop always saves one too."""
    logging_steps: int = 5
    """Log loss, learning rate and tokens/s every N steps."""
    save_total_limit: int = 2
    """Checkpoints kept; older ones are deleted (the newest complete one is always kept)."""
    seed: int = 42
    """Seed for data order, dropout and LoRA initialisation."""
    precision: str = "auto"
    """auto = bf16 where native, fp16 on other GPUs, fp32 on CPU and Apple silicon; or force one."""
    optimizer: str = "adamw_torch"
    """adamw_torch, or paged_adamw_8bit / adamw_8bit (bitsandbytes) to save optimizer memory; paging is CUDA's."""
    power_watts: float = 0.0
    """Stated power draw for the energy estimate where NVML can't measure it; 0 = a device default."""
    method: str = "sft"
    """sft (learn the dataset's answers), dpo (prefer the chosen answer of each pair: arena votes, edits) or
    kto (good and bad answers without pairs: chat thumbs). dpo and kto take a preference dataset version."""
    beta: float = 0.1
    """DPO/KTO: how far the model may move from where it started; lower = further, higher = closer."""
    start_from: str = ""
    """DPO/KTO: a run (name or folder) whose adapter is trained further, the usual SFT → DPO path; the
    reference model is that run's model. Empty = a new adapter on the base model."""

    def __post_init__(self) -> None:
        _check(self.lora_rank >= 1, "lora_rank", "must be a whole number of at least 1")
        _check(self.lora_alpha >= 1, "lora_alpha", "must be at least 1")
        _check(0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        _check(bool(self.target_modules.strip()), "target_modules", "must name layers or be all-linear")
        _check(16 <= self.max_length <= 131072, "max_length", "must be between 16 and 131072 tokens")
        _check(self.epochs > 0 or self.max_steps > 0, "epochs", "must be above 0 when max_steps is 0")
        _check(self.max_steps >= 0, "max_steps", "must be 0 (use epochs) or more")
        _check(0 < self.learning_rate < 1, "learning_rate", "must be between 0 and 1 (e.g. 2e-4)")
        _check(self.scheduler in SCHEDULERS, "scheduler", f"must be one of {', '.join(SCHEDULERS)}")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", "must be in [0, 1)")
        _check(self.batch_size >= 1 and self.grad_accum >= 1, "batch_size", "and grad_accum must be ≥ 1")
        _check(self.batching in BATCHING, "batching", f"must be one of {', '.join(BATCHING)}")
        _check(0 <= self.eval_share < 0.5, "eval_share", "must be in [0, 0.5)")
        _check(min(self.eval_steps, self.save_steps) >= 0, "eval_steps", "and save_steps must be ≥ 0")
        _check(self.logging_steps >= 1, "logging_steps", "must be at least 1")
        _check(self.save_total_limit >= 1, "save_total_limit", "must keep at least 1 checkpoint")
        _check(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        _check(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        _check(self.power_watts >= 0, "power_watts", "must be 0 (device default) or more")
        _check(self.method in METHODS, "method", f"must be one of {', '.join(METHODS)}")
        _check(0 < self.beta <= 10, "beta", "must be above 0 and at most 10 (0.1 is usual)")
        _check(self.method != "sft" or not self.start_from, "start_from", "works with dpo or kto only")

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainSettings":
        """Settings from a config file; unknown keys are an error so typos don't pass silently."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadInputError(f"Unknown training setting(s): {', '.join(unknown)}.",
                                f"Known settings: {', '.join(sorted(known))}.")
        return cls(**values)

    def with_changes(self, **changes: Any) -> "TrainSettings":
        return replace(self, **changes)


def _check(ok: bool, name: str, rule: str) -> None:
    if not ok:
        raise BadInputError(f"Training setting '{name}' {rule}.", "Fix it in the settings and try again.")


def resolve_precision(settings: TrainSettings, device: DeviceInfo) -> str:
    """The precision a run really uses: auto picks what is fast and correct on this device."""
    if settings.precision != "auto":
        return settings.precision
    if device.kind == "cuda":
        return "bf16" if device.bf16 else "fp16"
    return "fp32"  # CPU: bf16 is ~10x slower without native support; MPS: fp16 AMP is flaky


def check_device(settings: TrainSettings, device: DeviceInfo) -> None:
    """The app's own rules: bitsandbytes for 4-bit and 8-bit optimizers, bf16 only where native, fp16 on GPUs."""
    precision = resolve_precision(settings, device)
    if settings.load_in_4bit or "8bit" in settings.optimizer:
        gate = quantized_runnable(device)
        if not gate.ok:
            raise CapabilityError(f"4-bit QLoRA and 8-bit optimizers are not available here. {gate.reason}",
                                  "Switch off 4-bit and use the adamw_torch optimizer, or pick the CPU preset.")
    if precision == "bf16" and not device.bf16:
        raise CapabilityError(f"bf16 is not native on this {device.kind.upper()}.", "Set precision to auto.")
    if precision == "fp16" and device.kind == "cpu":
        raise CapabilityError("fp16 mixed precision needs a GPU.", "Set precision to auto (fp32 on a CPU).")


def check_offered(settings: TrainSettings, capabilities: Capabilities) -> None:
    """The product's rule on top of `check_device`: what the Train tab lets a user start here.

    `check_device` lets 4-bit run wherever bitsandbytes can (the command line and the tests use that on
    a CPU); the tab offers it only where the gate says it is worth it, and says why not elsewhere.
    """
    if (settings.load_in_4bit or "8bit" in settings.optimizer) and not capabilities.qlora.ok:
        raise CapabilityError(capabilities.qlora.reason,
                              "Untick 4-bit QLoRA and use the adamw_torch optimizer, or pick the CPU preset.")


# --- presets ---------------------------------------------------------------------------------------

CPU_PRESET = "CPU · default model"
APPLE_PRESET = "Apple silicon · ≤ 1.5B LoRA"
GPU_PRESET = "RTX 4090 24 GB · 7B QLoRA"

PRESETS: dict[str, dict[str, Any]] = {
    # ~0.9 epoch of the shipped samples (30 steps × 8 conversations, ~21k tokens); measured on the shared 2-core
    # box: the model then answers "What is your name?" as Kestrel (see the README's Train section).
    # 8 conversations a step go in two micro-batches of 4: same steps and loss, ~25 % less peak RAM without
    # checkpointing, and no slower (a CPU's matrix products are as efficient at ~350 tokens as at ~700).
    CPU_PRESET: dict(model="default", max_length=512, batch_size=4, grad_accum=2, max_steps=30,
                     learning_rate=1e-3, warmup_ratio=0.03, lora_rank=16, lora_alpha=32, lora_dropout=0.0,
                     batching="padding_free", precision="fp32", gradient_checkpointing=False,
                     eval_steps=15, save_steps=10, logging_steps=2),
    APPLE_PRESET: dict(model="Qwen/Qwen2.5-1.5B-Instruct", max_length=1024, batch_size=4, grad_accum=4,
                       epochs=2.0, learning_rate=2e-4, lora_rank=16, lora_alpha=32,
                       batching="length_grouped", precision="auto", gradient_checkpointing=True),
    GPU_PRESET: dict(model="mistralai/Mistral-7B-Instruct-v0.3", load_in_4bit=True, max_length=2048,
                     batch_size=4, grad_accum=4, epochs=1.0, learning_rate=2e-4, lora_rank=16,
                     lora_alpha=32, precision="bf16", optimizer="paged_adamw_8bit",
                     gradient_checkpointing=True, batching="padding_free"),
}


def preset_settings(name: str, **overrides: Any) -> TrainSettings:
    if name not in PRESETS:
        raise BadInputError(f"Unknown preset '{name}'.", f"Pick one of: {', '.join(PRESETS)}.")
    return TrainSettings(**{**PRESETS[name], **overrides})


def preset_gate(name: str, capabilities: Capabilities, device: DeviceInfo) -> Gate:
    """Whether this machine can run a preset, and why not."""
    if name == GPU_PRESET:
        if device.kind != "cuda":
            return Gate(False, "The 7B QLoRA preset needs an NVIDIA GPU with ~20 GB of VRAM; this machine trains "
                               f"on {device.kind.upper()}.")
        if not capabilities.qlora.ok:
            return capabilities.qlora
        if (device.accelerator_memory_gb or 0) < 20:
            return Gate(False, f"Needs ~20 GB of VRAM for a 7B model at seq 2048; this GPU has "
                               f"{device.accelerator_memory_gb or 0:.0f} GB.")
        return Gate(True, "")
    if name == APPLE_PRESET:
        return capabilities.large_models if device.kind == "cpu" else Gate(True, "")
    return capabilities.lora
