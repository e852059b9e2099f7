"""Training data: read a dataset version folder and tokenise it with assistant-token masks.

Contract: a version folder holds `train.jsonl` (and usually `validation.jsonl`), one canonical record
per line: `{"id", "source", "messages": [{"role", "content"}]}`. `load_splits` returns the records of
both splits (holding out `eval_share` of train when there is no validation split); `tokenize` turns
records into rows `{"input_ids", "assistant_masks"}` that TRL's SFTTrainer takes as already processed
(it turns the masks into -100 labels). Masks come from `core.masks`, so every assistant turn and its
end-of-turn token are trained whatever the template. Knows nothing about models or trainers.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BadInputError
from core.masks import assistant_token_mask
from core.workspace import Workspace

Record = dict[str, Any]


def list_versions(workspace: Workspace) -> list[Path]:
    """Dataset version folders, newest first: the Data stage's versions, then any folder with a train.jsonl."""
    try:
        from core.data import list_versions as data_versions  # the Data stage's own listing
    except ImportError:
        data_versions = None
    listed = [Path(folder) for folder in data_versions(workspace)] if data_versions else []
    others = [path.parent for path in workspace.datasets.glob("*/train.jsonl") if path.parent not in listed]
    return listed + sorted(others, key=lambda folder: folder.stat().st_mtime, reverse=True)


def read_jsonl(path: Path) -> list[Record]:
    """Records of one split; a broken line names the file and line."""
    records = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise BadInputError(f"{path.name} line {number} is not valid JSON ({error.msg}).",
                                    "Rebuild the dataset version in the Data tab.") from error
            if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
                raise BadInputError(f"{path.name} line {number} has no 'messages' list.",
                                    "Rebuild the dataset version in the Data tab.")
            records.append(record)
    return records


def load_splits(version: str | Path, eval_share: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Train and eval records of a version folder."""
    folder = Path(version)
    if not (folder / "train.jsonl").is_file():
        raise BadInputError(f"No train.jsonl in dataset version '{folder}'.",
                            "Pick a dataset version made by the Data tab.")
    train = read_jsonl(folder / "train.jsonl")
    if not train:
        raise BadInputError(f"{folder / 'train.jsonl'} holds no conversations.", "Add data in the Data tab.")
    validation = folder / "validation.jsonl"
    evaluation = read_jsonl(validation) if validation.is_file() else []
    if not evaluation and eval_share > 0 and len(train) >= 10:
        shuffled = train[:]
        random.Random(seed).shuffle(shuffled)
        held_out = max(1, int(len(train) * eval_share))
        evaluation, train = shuffled[:held_out], shuffled[held_out:]
    return train, evaluation


@dataclass(frozen=True)
class TokenStats:
    """What tokenisation did to a split, for the log and the pre-flight card."""

    rows: int
    tokens: int
    trained_tokens: int
    longest: int
    truncated: int
    dropped: int
    """Rows with no trained token left (e.g. the answer was cut off by max_length); not trained on."""


def tokenize(tokenizer: Any, records: list[Record], max_length: int,
             assistant_only_loss: bool) -> tuple[list[dict[str, list[int]]], TokenStats]:
    """Rows for SFTTrainer, cut to max_length; rows with nothing left to learn are dropped."""
    rows, tokens, trained, longest, truncated, dropped = [], 0, 0, 0, 0, 0
    for record in records:
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        ids, mask = assistant_token_mask(tokenizer, messages)
        if len(ids) > max_length:
            truncated += 1
            ids, mask = ids[:max_length], mask[:max_length]
        if not assistant_only_loss:
            mask = [True] * len(ids)
        if not any(mask):
            dropped += 1
            continue
        rows.append({"input_ids": ids, "assistant_masks": [int(flag) for flag in mask]})
        tokens += len(ids)
        trained += sum(mask)
        longest = max(longest, len(ids))
    return rows, TokenStats(len(rows), tokens, trained, longest, truncated, dropped)


def to_dataset(rows: list[dict[str, list[int]]]):
    from datasets import Dataset

    return Dataset.from_list(rows) if rows else None
