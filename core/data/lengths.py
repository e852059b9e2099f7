"""Conversation lengths in tokens of the chosen model's tokenizer, chat template included.

Contract: `measure(records, model)` returns `(lengths, unit)`. `model` is "default" (the default model's
tokenizer, read from its packaged GGUF once per machine), a local model folder, or "" for an estimate of
one token per four characters, which the unit then says. Tokenizers are cached per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

from core.errors import BadInputError

ESTIMATE_UNIT = "estimated tokens (characters / 4)"


def measure(records: list[dict], model: str) -> tuple[list[int], str]:
    if not model:
        return [sum(len(m["content"]) for m in r["messages"]) // 4 + 1 for r in records], ESTIMATE_UNIT
    tokenizer = load(model)
    if not records:
        return [], f"tokens ({_label(model)})"
    if tokenizer.chat_template:
        texts = [tokenizer.apply_chat_template(r["messages"], tokenize=False) for r in records]
    else:
        texts = ["\n".join(m["content"] for m in r["messages"]) for r in records]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(x) for x in ids], f"tokens ({_label(model)})"


@functools.lru_cache(maxsize=4)
def load(model: str):
    """The tokenizer of `model`; the default model's comes from its packaged GGUF (`models.default_tokenizer`)."""
    from core import models

    if model in models.DEFAULT_ALIASES:
        return models.default_tokenizer()
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise BadInputError(f"Model folder {model} does not exist, so its tokenizer cannot measure lengths.",
                            'Use "default", a local model folder, or an empty model to estimate lengths.')
    return models.load_tokenizer(folder)


def _label(model: str) -> str:
    from core import models

    return models.DEFAULT_MODEL if model in models.DEFAULT_ALIASES else Path(model).name


def histogram(lengths: list[int], cutoff: int, bins: int = 20) -> dict:
    """Equal-width bins over the data, reaching past the cutoff when the cutoff is near the data.

    A cutoff far above every length would squash all bars into the first bin, so then the bins cover
    the data only and the plot says the cutoff is off to the right.
    """
    longest = max(lengths, default=0)
    top = max(cutoff * 5 // 4, longest) if cutoff and cutoff <= 2 * longest else longest
    width = max(1, -(-(top + 1) // bins))
    counts = [0] * bins
    for length in lengths:
        counts[min(bins - 1, length // width)] += 1
    return {"edges": [i * width for i in range(bins + 1)], "counts": counts, "cutoff": cutoff}
