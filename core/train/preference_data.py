"""Data of a DPO / KTO run: the preference version as trainer rows, the adapter to start from, the
conversations to check forgetting on, and the pre-flight estimate.

Contract: `load_rows(settings)` returns (train rows, eval rows, held-out records) in TRL's format, each row
with a `length` for length-grouped batches: pairs for DPO; for KTO the unpaired answers plus each pair as
one good and one bad answer. `start_adapter` resolves `start_from` and refuses an adapter trained on another
base model. `estimate(settings, workspace, device)` is the pre-flight `Plan` of `core.train.preflight`, with
memory counted for the chosen and the rejected pass of every pair (twice the sequences of an SFT batch).
Knows nothing about trainers.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from core import models
from core.data import preference_versions
from core.errors import BadInputError
from core.train import support
from core.train.runs import ADAPTER_DIR, CONFIG_FILE, read_config
from core.train.settings import TrainSettings, resolve_precision
from core.workspace import Workspace

FORGETTING_ITEMS = 32


def start_adapter(settings: TrainSettings, workspace: Workspace) -> Path | None:
    """The adapter folder `start_from` names (a run name, a run folder or an adapter folder), checked
    against the base model it was trained on."""
    if not settings.start_from:
        return None
    given = Path(settings.start_from).expanduser()
    candidates = [given / ADAPTER_DIR, given, workspace.runs / settings.start_from / ADAPTER_DIR]
    adapter = next((path for path in candidates if (path / "adapter_config.json").is_file()), None)
    if adapter is None:
        raise BadInputError(f"No adapter to start from at '{settings.start_from}'.",
                            "Pick a finished run (its adapter/ folder must exist).")
    config = adapter.parent / CONFIG_FILE
    if config.is_file():
        base = read_config(adapter.parent).model
        if base != settings.model and models.resolve(base, workspace) != models.resolve(settings.model, workspace):
            raise BadInputError(f"Run {adapter.parent.name} was trained on '{base}', not on '{settings.model}'.",
                                f"Set the base model to '{base}' to continue from its adapter.")
    return adapter


def load_rows(settings: TrainSettings) -> tuple[list[dict], list[dict], dict]:
    """Training rows and eval rows in TRL's format, and the held-out records for the before/after check."""
    version = settings.dataset
    pairs = {split: preference_versions.load_pairs(version, split) for split in ("train", "validation")}
    unpaired = {split: preference_versions.load_unpaired(version, split) for split in ("train", "validation")}
    held_out = {"pairs": pairs["validation"], "unpaired": unpaired["validation"]}
    if settings.method == "dpo":
        rows = {split: [_trl_pair(r) for r in pairs[split]] for split in pairs}
        if not rows["train"]:
            raise BadInputError(f"{Path(version).name} holds no training pairs, which DPO needs.",
                                "Vote A or B in the arena (or edit chat answers), or train with KTO on thumbs.")
    else:
        rows = {split: [row for r in pairs[split] for row in _unpair(r)] + [_trl_unpaired(r) for r in unpaired[split]]
                for split in pairs}
        # KTO's sampler is sequential (its KL term pairs neighbours), so mix good and bad answers once, seeded.
        random.Random(settings.seed).shuffle(rows["train"])
        labels = {row["label"] for row in rows["train"]}
        if labels != {True, False}:
            raise BadInputError("KTO needs both good and bad answers in the training split.",
                                "Add thumbs up and thumbs down (or pairs) to the preference data.")
    for split in rows:  # a length per row lets the sampler batch similar lengths together
        for row in rows[split]:
            row["length"] = sum(len(m["content"]) for m in row["prompt"]) + max(
                len(row[key][0]["content"]) for key in ("chosen", "rejected", "completion") if key in row)
    return rows["train"], rows["validation"], held_out


def forgetting_set(settings: TrainSettings, workspace: Workspace) -> list:
    """Held-out conversations to measure forgetting on: the validation split of the run started from."""
    from core.evaluate.prompts import dataset_prompts

    start = start_adapter(settings, workspace)
    if not start or not (start.parent / CONFIG_FILE).is_file():
        return []
    dataset = Path(read_config(start.parent).dataset)
    if not (dataset / "validation.jsonl").is_file() or preference_versions.is_preference_version(dataset):
        return []
    return dataset_prompts(dataset)[:FORGETTING_ITEMS]


def _trl_pair(record: dict) -> dict:
    return {"prompt": record["prompt"], "chosen": record["chosen"], "rejected": record["rejected"]}


def _trl_unpaired(record: dict) -> dict:
    return {"prompt": record["prompt"], "completion": record["completion"], "label": bool(record["label"])}


def _unpair(record: dict) -> list[dict]:
    return [{"prompt": record["prompt"], "completion": record["chosen"], "label": True},
            {"prompt": record["prompt"], "completion": record["rejected"], "label": False}]


def estimate(settings: TrainSettings, workspace: Workspace, device: Any):
    """The pre-flight plan of a preference run; the card reads like SFT's, counted in pairs."""
    from transformers import AutoConfig, AutoTokenizer

    from core.masks import completion_split
    from core.train import preflight

    model_dir = models.resolve(settings.model, workspace)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows, _, _ = load_rows(settings)
    splits = [completion_split(tokenizer, row["prompt"], row[key][0]["content"])
              for row in rows for key in ("chosen", "rejected", "completion") if key in row]
    lengths = [len(prompt) + len(completion) for prompt, completion in splits]
    longest = min(max(lengths), settings.max_length)
    real_tokens = sum(min(length, settings.max_length) for length in lengths)
    trained_share = sum(len(completion) for _, completion in splits) / max(1, sum(lengths))  # loss on answers only
    counts = preflight.count_parameters(AutoConfig.from_pretrained(model_dir), settings)
    per_epoch = max(1, math.ceil(len(rows) / settings.effective_batch))
    steps = settings.max_steps or math.ceil(per_epoch * settings.epochs)
    # Two sequences per example: chosen and rejected (DPO), or the answer and its KL partner (KTO).
    doubled = settings.with_changes(batch_size=2 * settings.batch_size, assistant_only_loss=True)
    memory = preflight.memory_estimate(doubled, counts, longest, trained_share, resolve_precision(settings, device),
                                       device.kind)
    return preflight.Plan(counts.total, counts.trainable, len(rows), real_tokens, longest, steps, memory,
                          preflight.available_gb(device), preflight.device_label(device),
                          total_steps_per_epoch=per_epoch, quantized=settings.load_in_4bit,
                          limits=tuple(support.limits(model_dir)))


def card(plan: Any, settings: TrainSettings) -> str:
    from core.train import preflight

    unit = "pairs" if settings.method == "dpo" else "good/bad answers"
    note = ("\n\nMemory counts two sequences per example (chosen and rejected; for KTO the answer and its KL "
            "partner). The reference model adds no weights: it is the same model with the new adapter off.")
    return preflight.card(plan).replace(" conversations ·", f" {unit} ·", 1) + note
