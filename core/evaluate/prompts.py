"""Prompt sets for battles and metrics, all read into one shape: `PromptItem`.

Sources:
* a dataset version's validation split (`validation.jsonl`, canonical `{"id", "messages"}` records):
  the conversation up to its last assistant turn is the prompt, that turn is the reference;
* a JSONL of questions: `{"prompt": ...}` / `{"question": ...}`, or MT-bench style `{"turns": [...]}`
  (two-turn questions are answered turn by turn), with an optional `reference` (string or list);
* the small bilingual (English / Simplified Chinese) set shipped in `assets/prompts/`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInputError

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "prompts" / "bilingual.jsonl"


@dataclass(frozen=True)
class PromptItem:
    id: str
    turns: tuple[str, ...] = ()
    """User turns, answered one after another (MT-bench two-turn questions have two)."""
    reference: str | None = None
    """The expected answer to the last turn, when the set has one (needed for ROUGE-L and BLEU)."""
    history: tuple[dict, ...] = field(default=())
    """Earlier messages (system, previous turns) that come before `turns`, for dataset conversations."""

    def messages(self) -> list[dict]:
        """The single-turn prompt as messages (history + the first turn)."""
        return [*self.history, {"role": "user", "content": self.turns[0]}]


def shipped_prompts(lang: str | None = None) -> list[PromptItem]:
    items = read_jsonl(SHIPPED)
    return [item for item in items if lang is None or item.id.startswith(f"{lang}-")]


def read_jsonl(path: Path) -> list[PromptItem]:
    """Questions from a JSONL file; a bad line is reported with its number."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_question(json.loads(line), f"{Path(path).name}:{number}"))
        except (ValueError, TypeError, KeyError) as error:
            raise BadInputError(f"{path}, line {number}: not a question ({error}).",
                                'Each line needs "prompt", "question" or "turns" (a list of strings).') from error
    return items


def _question(row: dict, fallback_id: str) -> PromptItem:
    if "messages" in row:
        return _conversation(row, fallback_id)
    turns = row.get("turns") or [row.get("prompt") or row.get("question") or row.get("instruction")]
    if not all(isinstance(turn, str) and turn.strip() for turn in turns):
        raise ValueError("empty question")
    reference = row.get("reference", row.get("answer"))
    if isinstance(reference, list):  # MT-bench keeps one reference per turn; metrics score the last
        reference = reference[-1] if reference else None
    return PromptItem(id=str(row.get("id", row.get("question_id", fallback_id))), turns=tuple(turns),
                      reference=reference or None)


def _conversation(row: dict, fallback_id: str) -> PromptItem:
    messages = row["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0 or messages[last - 1]["role"] != "user":
        raise ValueError("no user turn followed by an assistant answer")
    return PromptItem(id=str(row.get("id", fallback_id)), turns=(messages[last - 1]["content"],),
                      reference=messages[last]["content"], history=tuple(messages[: last - 1]))


def dataset_prompts(version_dir: Path) -> list[PromptItem]:
    """The validation split of a dataset version (falls back to nothing, with a clear error)."""
    path = Path(version_dir) / "validation.jsonl"
    if not path.is_file():
        raise BadInputError(f"{version_dir.name} has no validation split ({path.name} is missing).",
                            "Rebuild the dataset with a validation share above 0, or use a prompt file.")
    return read_jsonl(path)


def load_prompt_set(source: str | Path) -> list[PromptItem]:
    """"shipped", a dataset version folder, or a JSONL file."""
    if str(source) == "shipped":
        return shipped_prompts()
    path = Path(source)
    if path.is_dir():
        return dataset_prompts(path)
    if path.is_file():
        return read_jsonl(path)
    raise BadInputError(f"No prompt set at {source}.", "Give a dataset folder, a .jsonl file or 'shipped'.")


def pick(items: list[PromptItem], rng: random.Random | None = None) -> PromptItem:
    if not items:
        raise BadInputError("The prompt set is empty.", "Type a prompt or choose another set.")
    return (rng or random.SystemRandom()).choice(items)
