"""The SFT recipe: load → SFTTrainer(peft_config=...) → train → save, readable top to bottom.

Contract: `train(settings, run_dir, workspace, reporter, resume_from=None)` fine-tunes LoRA adapters on
`settings.model` with the dataset version `settings.dataset`, writes checkpoints to
`run_dir/checkpoints/`, the adapter (with tokenizer and chat template) to `run_dir/adapter/`
atomically, and returns a summary dict. The reporter is the job's context (log, event, progress,
should_stop). A stop request ends with a checkpoint and the adapter; out of memory raises a
`ChatsmithError` with concrete advice after freeing memory. `max_steps_override` serves the
pre-flight probe: a few steps, nothing saved.
"""

from __future__ import annotations

import gc
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from core import atomic, models
from core.devices import DeviceInfo, detect
from core.errors import ChatsmithError
from core.masks import lint_masks
from core.train import callbacks, data, speed, support
from core.train.runs import ADAPTER_DIR, CHECKPOINTS_DIR
from core.train.settings import TrainSettings, check_device, resolve_precision
from core.workspace import Workspace

LINT_SAMPLES = 32


def train(settings: TrainSettings, run_dir: Path, workspace: Workspace, reporter: Any,
          resume_from: Path | None = None, max_steps_override: int = 0) -> dict[str, Any]:
    import torch

    device = detect(workspace.root)
    precision = resolve_precision(settings, device)
    check_device(settings, device)
    model_dir = models.resolve(settings.model, workspace)
    tokenizer, train_rows, eval_rows = _load_data(settings, model_dir, reporter)
    for limit in support.limits(model_dir):
        reporter.log(f"note: {limit}")

    model = load_model(model_dir, settings, precision)
    trainer, progress, counter = _make_trainer(settings, model, tokenizer, train_rows, eval_rows, run_dir, device,
                                               precision, reporter, max_steps_override)
    reporter.log(f"speed: {speed.fast_lm_head(trainer)}")
    reporter.log(f"speed: {speed.fast_lora(trainer.model)}")
    trainable, total = trainer.model.get_nb_trainable_parameters()
    reporter.log(f"model: {total / 1e6:.1f}M parameters, {trainable / 1e6:.2f}M trainable (LoRA r={settings.lora_rank})"
                 f" · {device.kind} · {precision}{' · base in 4-bit NF4' if settings.load_in_4bit else ''}"
                 f"{_processes(trainer)}")
    atomic.ensure_free_space(run_dir, checkpoint_bytes(trainable, settings), "checkpoints and the adapter")

    started = time.time()
    try:
        fit(trainer, progress, settings, resume_from, final_eval=bool(eval_rows) and not max_steps_override)
    except torch.OutOfMemoryError as error:
        del trainer, model  # this frame's references, so that the memory is really freed before advising
        free_memory()
        raise ChatsmithError(*oom_advice(settings, device)) from error

    if not max_steps_override and trainer.accelerator.is_main_process:  # one writer under accelerate launch
        save_adapter(trainer.model, tokenizer, run_dir / ADAPTER_DIR)
    summary = {**run_summary(trainer, progress, trainable, total, device, precision),
               "duration_s": round(time.time() - started, 2),
               "processed_tokens": getattr(counter, "processed_tokens", 0)}
    del trainer, model
    free_memory()
    return summary


def _load_data(settings: TrainSettings, model_dir: Path, reporter: Any) -> tuple[Any, list, list]:
    """The tokenizer and the tokenized training and eval rows; logs what the data holds."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    train_records, eval_records = data.load_splits(settings.dataset, settings.eval_share, settings.seed)
    if settings.assistant_only_loss:
        lint_masks(tokenizer, [record["messages"] for record in train_records[:LINT_SAMPLES]])
    train_rows, stats = data.tokenize(tokenizer, train_records, settings.max_length, settings.assistant_only_loss)
    eval_rows, _ = data.tokenize(tokenizer, eval_records, settings.max_length, settings.assistant_only_loss)
    reporter.log(f"data: {stats.rows} training conversations, {stats.tokens} tokens ({stats.trained_tokens} "
                 f"trained), longest {stats.longest}; {stats.truncated} cut to {settings.max_length}, "
                 f"{stats.dropped} dropped with nothing to learn; {len(eval_rows)} for eval")
    return tokenizer, train_rows, eval_rows


def _make_trainer(settings: TrainSettings, model: Any, tokenizer: Any, train_rows: list, eval_rows: list,
                  run_dir: Path, device: DeviceInfo, precision: str, reporter: Any, max_steps_override: int):
    """TRL's SFTTrainer with LoRA; the progress callback and the collator that counts real tokens for it."""
    from trl import SFTTrainer

    counter = callbacks.CountingCollator(pad_token_id=tokenizer.pad_token_id,
                                         padding_free=settings.batching == "padding_free")
    progress = callbacks.ProgressCallback(reporter, counter, device.kind, settings.power_watts)
    trainer = SFTTrainer(
        model=model,
        args=sft_config(settings, run_dir, device, precision, bool(eval_rows), max_steps_override),
        train_dataset=data.to_dataset(train_rows),
        eval_dataset=data.to_dataset(eval_rows),
        processing_class=tokenizer,
        peft_config=lora_config(settings),
        data_collator=None if settings.batching == "packing" else counter,  # TRL packs with its own
        callbacks=[progress, callbacks.CompleteMarker()],
    )
    keep_adapters_in(trainer.model, precision)
    if settings.batching == "packing":
        counter.real_tokens = 0  # packing has no pads: the Trainer's own count is the real count
        progress.counter = _TrainerTokenCount(trainer)
    return trainer, progress, counter


def fit(trainer: Any, progress: Any, settings: TrainSettings, resume_from: Path | None, final_eval: bool) -> None:
    """Train (on from a checkpoint when resuming), then the final eval loss for the curve and the compare
    table, unless the run was stopped or its last step had one already."""
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    evaluated_last = settings.eval_steps and trainer.state.global_step % settings.eval_steps == 0
    if final_eval and progress.stopped_at is None and not evaluated_last:
        trainer.evaluate()


def run_summary(trainer: Any, progress: Any, trainable: int, total: int, device: DeviceInfo,
                precision: str) -> dict[str, Any]:
    """What every recipe's summary says of a finished run (the caller adds its duration and extras)."""
    return {"step": trainer.state.global_step, "max_steps": trainer.state.max_steps,
            "stopped_at": progress.stopped_at, "real_tokens": progress.counter.real_tokens,
            "energy_wh": round(progress.energy_wh, 4), "trainable_params": trainable, "total_params": total,
            "device": device.kind, "precision": precision, "trl": version("trl")}


def _processes(trainer: Any) -> str:
    processes = trainer.accelerator.num_processes
    return f" · {processes} processes ({trainer.accelerator.distributed_type.value})" if processes > 1 else ""


class _TrainerTokenCount:
    def __init__(self, trainer: Any):
        self.trainer = trainer

    @property
    def real_tokens(self) -> int:
        return self.trainer.state.num_input_tokens_seen


def load_model(model_dir: Path, settings: TrainSettings, precision: str):
    """The base model to train: at `precision`, or in 4-bit NF4 prepared for QLoRA as PEFT prescribes."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    attention = speed.attention_for(settings)
    if not settings.load_in_4bit:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attention)
    from peft import prepare_model_for_kbit_training

    # A quantised model cannot be moved after loading: place it where this process trains.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=attention,
                                                 quantization_config=models.nf4_config(dtype),
                                                 device_map={"": training_device()})
    # Freezes the base, upcasts norms and embeddings to fp32 and, with checkpointing, lets gradients
    # reach the LoRA layers through the frozen 4-bit ones.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings.gradient_checkpointing)


def training_device() -> str:
    """This process's device: its own GPU under `accelerate launch` (LOCAL_RANK), else GPU 0, else the CPU."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def keep_adapters_in(model: Any, precision: str) -> None:
    """Undo TRL's bf16 cast of a quantised model's LoRA weights when the run is not in bf16.

    TRL casts them to bf16 for QLoRA (the paper's choice on GPUs). On a CPU that has no native bf16 a
    bf16 matrix product runs ~1000x slower than fp32, and fp16 runs keep fp32 masters anyway; the
    optimizer is not built yet, so casting back here is safe.
    """
    import torch

    if precision == "bf16" or not getattr(model, "is_loaded_in_4bit", False):
        return
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()


def lora_config(settings: TrainSettings):
    from peft import LoraConfig

    targets = settings.target_modules.strip()
    return LoraConfig(
        r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
        target_modules=targets if targets == "all-linear" else [name.strip() for name in targets.split(",")],
        task_type="CAUSAL_LM",
    )


def sft_config(settings: TrainSettings, run_dir: Path, device: DeviceInfo, precision: str, has_eval: bool,
               max_steps_override: int = 0):
    from trl import SFTConfig

    steps = max_steps_override or settings.max_steps
    return SFTConfig(
        output_dir=str(run_dir / CHECKPOINTS_DIR),
        # what is learned, and how fast
        num_train_epochs=settings.epochs, max_steps=steps or -1, learning_rate=settings.learning_rate,
        # A ratio passed as warmup_steps on purpose: transformers 5 dropped `warmup_ratio`, and reads a
        # warmup_steps below 1 as a share of the steps (`TrainingArguments.get_warmup_steps`); the
        # settings keep warmup_ratio in [0, 1), so it is always read as a share.
        lr_scheduler_type=settings.scheduler, warmup_steps=settings.warmup_ratio, seed=settings.seed,
        optim=settings.optimizer,
        # batches: our rows are already cut to max_length and carry their masks
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, max_length=settings.max_length,
        packing=settings.batching == "packing", packing_strategy="bfd",
        train_sampling_strategy="group_by_length" if settings.batching == "length_grouped" else "random",
        include_num_input_tokens_seen="all" if settings.batching == "packing" else "no",
        # memory and precision (TRL defaults to bf16 and checkpointing: wrong for a CPU)
        gradient_checkpointing=settings.gradient_checkpointing, bf16=precision == "bf16",
        fp16=precision == "fp16", use_cpu=device.kind == "cpu", dataloader_pin_memory=device.kind == "cuda",
        # when to log, evaluate and save
        logging_steps=settings.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_eval and settings.eval_steps and not max_steps_override else "no",
        eval_steps=settings.eval_steps or None,
        save_strategy="steps" if settings.save_steps and not max_steps_override else "no",
        save_steps=settings.save_steps or 500, save_total_limit=settings.save_total_limit,
        report_to="none", disable_tqdm=True,
    )


def save_adapter(model: Any, tokenizer: Any, target: Path) -> None:
    """Adapter weights + config, tokenizer and chat template, swapped in whole, so a failed save keeps the old one."""
    with atomic.directory(target, replace=True, owned=True) as tmp:  # always the run's own adapter/
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def checkpoint_bytes(trainable: int, settings: TrainSettings) -> int:
    """fp32 LoRA weights + two Adam moments, per kept checkpoint and the adapter, plus slack for tokenizers."""
    per_copy = trainable * 4 * 3
    return per_copy * (settings.save_total_limit + 2) + 64 * 2**20


def oom_advice(settings: TrainSettings, device: DeviceInfo) -> tuple[str, str]:
    steps = [f"halve batch_size to {max(1, settings.batch_size // 2)} and double grad_accum to "
             f"{settings.grad_accum * 2} (same effective batch)",
             f"lower max_length from {settings.max_length} to {max(128, settings.max_length // 2)}"]
    if not settings.gradient_checkpointing:
        steps.append("switch on gradient checkpointing")
    if device.kind == "cuda" and not settings.load_in_4bit:
        steps.append("switch on 4-bit QLoRA")
    where = "GPU" if device.kind in ("cuda", "mps") else "RAM"
    return (f"Training ran out of {where} memory ({device.name}); the run is marked failed and the memory freed.",
            "Try, in this order: " + "; ".join(steps) + ".")


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
