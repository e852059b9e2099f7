"""The preference recipe: load → DPOTrainer / KTOTrainer(peft) → check before → train → check after → save.

Contract: `train(settings, run_dir, workspace, reporter, resume_from=None, max_steps_override=0)` does for a
`method: dpo` or `kto` run what `core.train.recipe.train` does for SFT, in the same run folder layout and
with the same callbacks (events, stop with a checkpoint, completion markers, power), so the job runner,
stop / resume, the live plots, export, Chat and Arena treat it like any run. The data is a preference
version (`core.data.preference_versions`): pairs for DPO; unpaired answers, plus each pair split into a good
and a bad answer, for KTO.

The reference model costs no second copy of the weights: with a new adapter it is the base model with the
adapter switched off; starting from an earlier run's adapter (`start_from`, the usual SFT → DPO path), TRL
keeps a frozen copy of that adapter (megabytes) as the reference. The held-out check of
`core.evaluate.preference_check` runs before and after training and lands in `preference_check.json` and the
report. A few things make it faster than TRL's defaults on a CPU, none changing the loss: no gradient
checkpointing for small models (the settings decide), micro-batches of a few pairs (less padding than one
batch of many), the LM head scored only on the answers' tokens, and, with the CPU preset's
batching, causal attention per row without a padding mask (`core.train.speed`): TRL pads on the right, so no
real token can attend to a pad, and the tests check the answers' log-probabilities against stock SDPA.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from core import atomic, models
from core.devices import detect
from core.errors import ChatsmithError
from core.evaluate import preference_check
from core.masks import lint_pairs
from core.train import callbacks, recipe, speed
from core.train.preference_data import forgetting_set, load_rows, start_adapter
from core.train.runs import ADAPTER_DIR, CHECKPOINTS_DIR
from core.train.settings import TrainSettings, check_device, resolve_precision
from core.workspace import Workspace

CHECK_FILE = "preference_check.json"
LINT_SAMPLES = 32


def train(settings: TrainSettings, run_dir: Path, workspace: Workspace, reporter: Any,
          resume_from: Path | None = None, max_steps_override: int = 0) -> dict[str, Any]:
    import torch

    device = detect(workspace.root)
    precision = resolve_precision(settings, device)
    check_device(settings, device)
    model_dir = models.resolve(settings.model, workspace)
    start = start_adapter(settings, workspace)
    tokenizer, train_rows, eval_rows, held_out = _load_data(settings, model_dir, start, reporter)

    # the model, and the check before training (its "before" half), which a probe skips
    model = load_policy(model_dir, start, settings, precision, reporter)
    probe = bool(max_steps_override)
    conversations = [] if probe else forgetting_set(settings, workspace)
    before = None if probe else preference_check.measure(model, tokenizer, held_out["pairs"], held_out["unpaired"],
                                                          conversations)
    counter = CountingPreferenceCollator(settings.method, _pad_id(tokenizer), settings.max_length)
    progress = callbacks.ProgressCallback(reporter, counter, device.kind, settings.power_watts)
    trainer = make_trainer(settings, model, tokenizer, train_rows, eval_rows, run_dir, device, precision,
                           max_steps_override, None if start else recipe.lora_config(settings), counter,
                           [progress, callbacks.CompleteMarker()])
    trainable, total = _log_model(trainer, settings, device, precision, reporter)
    atomic.ensure_free_space(run_dir, recipe.checkpoint_bytes(trainable, settings), "checkpoints and the adapter")

    started = time.time()
    try:
        recipe.fit(trainer, progress, settings, resume_from, final_eval=bool(eval_rows) and not probe)
    except torch.OutOfMemoryError as error:
        del trainer, model  # this frame's references, so that the memory is really freed before advising
        recipe.free_memory()
        raise ChatsmithError(*recipe.oom_advice(settings, device)) from error
    duration = round(time.time() - started, 2)  # training alone: the check and the save come after

    check = {} if probe else check_and_save(trainer.model, tokenizer, before, held_out, conversations, settings,
                                            run_dir, reporter)
    summary = {**recipe.run_summary(trainer, progress, trainable, total, device, precision), "duration_s": duration,
               "processed_tokens": counter.processed_tokens, "preference_check": check}
    del trainer, model
    recipe.free_memory()
    return summary


def _load_data(settings: TrainSettings, model_dir: Path, start: Path | None, reporter: Any):
    """The tokenizer (the start run's, when it saved one), the training and eval rows, and the held-out
    pairs and rated answers the check measures on; logs how many."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(start if start and (start / "tokenizer_config.json").is_file()
                                              else model_dir)
    train_rows, eval_rows, held_out = load_rows(settings)
    lint_pairs(tokenizer, [(row["prompt"], _first_answer(row)) for row in train_rows[:LINT_SAMPLES]])
    reporter.log(f"data: {len(train_rows)} training {_unit(settings)}, {len(eval_rows)} held out")
    return tokenizer, train_rows, eval_rows, held_out


def _log_model(trainer: Any, settings: TrainSettings, device: Any, precision: str, reporter: Any) -> tuple[int, int]:
    """Logs the speed path and the model's size; returns its trainable and total parameter counts."""
    reporter.log(f"speed: {speed.fast_lm_head(trainer)}")
    reporter.log(f"speed: {speed.fast_lora(trainer.model)}")
    trainable, total = trainer.model.get_nb_trainable_parameters()
    reporter.log(f"model: {total / 1e6:.1f}M parameters, {trainable / 1e6:.2f}M trainable "
                 f"({settings.method.upper()}, beta {settings.beta}) · {device.kind} · {precision}")
    return trainable, total


def load_policy(model_dir: Path, start: Path | None, settings: TrainSettings, precision: str, reporter: Any):
    """The model to train: the base, or the base with the start run's adapter, trainable."""
    model = recipe.load_model(model_dir, settings, precision)
    if not start:
        return model
    from peft import PeftModel

    reporter.log(f"starting from the adapter of {start.parent.name}; it is also the reference model")
    return PeftModel.from_pretrained(model, str(start), is_trainable=True)


def check_and_save(model: Any, tokenizer: Any, before: dict, held_out: dict, conversations: list,
                   settings: TrainSettings, run_dir: Path, reporter: Any) -> dict:
    """The held-out check after training against the one before, written and logged; then the adapter."""
    after = preference_check.measure(model, tokenizer, held_out["pairs"], held_out["unpaired"], conversations)
    check = preference_check.compare(before, after, settings.beta)
    atomic.write_json(run_dir / CHECK_FILE, check)
    for line in preference_check.check_text(check):
        reporter.log(line)
    save_adapter(model, tokenizer, run_dir / ADAPTER_DIR)
    return check


def make_trainer(settings: TrainSettings, model: Any, tokenizer: Any, train_rows: list[dict], eval_rows: list[dict],
                 run_dir: Path, device: Any, precision: str, max_steps_override: int, peft_config: Any,
                 collator: Any, callbacks: list):
    from datasets import Dataset
    from trl import DPOTrainer, KTOTrainer

    args = trainer_config(settings, run_dir, device, precision, bool(eval_rows), max_steps_override, train_rows)
    kind = DPOTrainer if settings.method == "dpo" else KTOTrainer
    return kind(model=model, args=args, train_dataset=Dataset.from_list(train_rows),
                eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None, processing_class=tokenizer,
                peft_config=peft_config, data_collator=collator, callbacks=callbacks)


def trainer_config(settings: TrainSettings, run_dir: Path, device: Any, precision: str, has_eval: bool,
                   max_steps_override: int, train_rows: list[dict]):
    from trl import DPOConfig, KTOConfig

    steps = max_steps_override or settings.max_steps
    common = dict(
        output_dir=str(run_dir / CHECKPOINTS_DIR),
        num_train_epochs=settings.epochs, max_steps=steps or -1, learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.scheduler, warmup_steps=settings.warmup_ratio, seed=settings.seed,
        optim=settings.optimizer, beta=settings.beta,
        per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum, max_length=settings.max_length,
        # TRL's defaults are bf16 and checkpointing, wrong for a CPU; the settings decide, as for SFT
        gradient_checkpointing=settings.gradient_checkpointing, bf16=precision == "bf16",
        fp16=precision == "fp16", use_cpu=device.kind == "cpu", dataloader_pin_memory=device.kind == "cuda",
        logging_steps=settings.logging_steps, logging_first_step=True,
        eval_strategy="steps" if has_eval and settings.eval_steps and not max_steps_override else "no",
        eval_steps=settings.eval_steps or None,
        save_strategy="steps" if settings.save_steps and not max_steps_override else "no",
        save_steps=settings.save_steps or 500, save_total_limit=settings.save_total_limit,
        report_to="none", disable_tqdm=True,
        # the sampler needs the `length` column, which the trainer would otherwise drop before sampling
        remove_unused_columns=False,
    )
    if settings.method == "dpo":
        # TRL's random batches unless length grouping is asked for by name: grouping decides which pairs share
        # an optimizer step, and over the few steps a round of votes gives, that changed the result (bench:
        # held-out DPO loss 0.49 grouped vs 0.41 random). Padding-free batching has no DPO path in TRL yet;
        # micro-batches of a few pairs already pad far less than TRL's default batch of 8.
        grouped = settings.batching == "length_grouped"
        return DPOConfig(**common, train_sampling_strategy="group_by_length" if grouped else "random")
    weights = kto_weights(train_rows)
    # KTO estimates its KL term from neighbours in a fixed-order batch, so its sampler must stay sequential.
    return KTOConfig(**common, train_sampling_strategy="sequential", **weights)


def kto_weights(rows: list[dict]) -> dict[str, float]:
    """Weights that balance good and bad answers, inside the range of the KTO paper's Eq. (8)."""
    good = max(1, sum(row["label"] for row in rows))
    bad = max(1, len(rows) - good)
    if good >= bad:
        return {"desirable_weight": 1.0, "undesirable_weight": round(min(good / bad, 10.0), 3)}
    return {"desirable_weight": round(min(bad / good, 10.0), 3), "undesirable_weight": 1.0}


def save_adapter(model: Any, tokenizer: Any, target: Path) -> None:
    """The trained adapter only (not TRL's frozen reference copy), tokenizer and chat template, atomically."""
    with atomic.directory(target, replace=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, selected_adapters=["default"])
        tokenizer.save_pretrained(tmp)


def read_check(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / CHECK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class CountingPreferenceCollator:
    """TRL's own collator for the method, also counting the real (non-pad) tokens it hands out, for tokens/s."""

    def __init__(self, method: str, pad_token_id: int, max_length: int):
        from trl.trainer.dpo_trainer import DataCollatorForPreference
        from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

        kind = DataCollatorForPreference if method == "dpo" else DataCollatorForUnpairedPreference
        self.inner = kind(pad_token_id=pad_token_id, max_length=max_length)
        self.real_tokens = 0
        self.processed_tokens = 0

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.inner(examples)
        self.real_tokens += int(batch["attention_mask"].sum())
        self.processed_tokens += batch["input_ids"].numel()
        return batch


def _pad_id(tokenizer: Any) -> int:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer.pad_token_id


def _first_answer(row: dict) -> str:
    return (row.get("chosen") or row.get("completion"))[0]["content"]


def _unit(settings: TrainSettings) -> str:
    return "pairs" if settings.method == "dpo" else "good/bad answers"
