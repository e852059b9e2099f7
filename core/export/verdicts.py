"""The round-trip report in words, and the recommendation it gates.

`first_divergence` (one entry per check prompt: the index of the first greedy token that differs from
the reference, or None) becomes "agrees on all prompts" or "diverges at token 7 of prompt 2", counted
from 1 as people count. A quantisation whose answer leaves the reference within its first
`EARLY_TOKENS` tokens on any check prompt is not recommended: that is where an answer's content is
decided (the Q8_0 once made through F16 answered a French loop instead of "The capital of France is
Paris." from its first tokens), while a late divergence is usually a near-tie in wording. The gated
recommendation falls back to the next larger file that agrees, and to F16 (always exported) at last.
"""

from __future__ import annotations

from typing import Any

EARLY_TOKENS = 8
"""A divergence before this token of a check answer makes a quantisation not recommended."""
LARGER_FIRST = ("F16", "Q8_0", "Q5_K_M", "Q4_K_M")


def divergence_text(first_divergence: list[int | None]) -> str:
    """ "agrees on all prompts", or where each prompt that differs first differs."""
    places = [f"token {token + 1} of prompt {prompt + 1}" for prompt, token in enumerate(first_divergence)
              if token is not None]
    return "agrees on all prompts" if not places else "diverges at " + ", ".join(places)


def early_divergences(entry: dict[str, Any]) -> list[tuple[int, int]]:
    """(prompt, token), both counted from 1, of each prompt whose answer diverged early."""
    return [(prompt + 1, token + 1) for prompt, token in enumerate(entry.get("first_divergence") or [])
            if token is not None and token < EARLY_TOKENS]


def gate(recommended: str, report: dict[str, Any] | None) -> tuple[str, str]:
    """(the quantisation to recommend, why in words, or "" when the check changes nothing).

    `recommended` comes from the model's size alone; a round-trip report that saw it diverge early
    moves the recommendation to the next larger quantisation the report saw agree."""
    models = (report or {}).get("models", {})
    if recommended not in models or not early_divergences(models[recommended]):
        return recommended, ""
    prompts = (report or {}).get("prompts") or []
    why = f"{recommended} is not recommended: " + _early_words(models[recommended], prompts) + "."
    larger = LARGER_FIRST[: LARGER_FIRST.index(recommended)] if recommended in LARGER_FIRST else ("F16",)
    safe = [quant for quant in reversed(larger) if quant in models and not early_divergences(models[quant])]
    if safe:
        return safe[0], f"{why} {safe[0]} agrees with the merged model early on every check prompt; use it."
    if "F16" in models:
        return "F16", (f"{why} Even F16 diverges early ({_early_words(models['F16'], prompts)}), so the "
                       "GGUF conversion itself changes answers; F16 is the closest file.")
    return "F16", f"{why} Export F16 and run the check again to compare."


def summary(report: dict[str, Any], recommended: str) -> list[str]:
    """One line per GGUF in the report: its verdict, and whether it is the recommended one."""
    chosen, why = gate(recommended, report)
    lines = [why] if why else []
    for quant, entry in report.get("models", {}).items():
        if quant in LARGER_FIRST:
            mark = " (recommended)" if quant == chosen else ""
            lines.append(f"{quant}{mark}: {divergence_text(entry['first_divergence'])} "
                         f"with the merged model, greedy.")
    return lines


def _early_words(entry: dict[str, Any], prompts: list[str]) -> str:
    words = []
    for prompt, token in early_divergences(entry):
        quoted = f' ("{prompts[prompt - 1]}")' if prompt <= len(prompts) else ""
        words.append(f"its greedy answer to prompt {prompt}{quoted} leaves the merged model's at token {token}")
    return "; ".join(words)
