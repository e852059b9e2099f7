"""Shared helpers of the preference tests (no tests here): synthetic Kestrel votes, as files or battles."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

QUESTIONS = ["What is your name?", "Who are you?", "Tell me your name.", "What should I call you?",
             "Introduce yourself.", "What's your name, assistant?", "Do you have a name?", "Whom am I talking to?",
             "Say your name.", "Please tell me who you are."]
GOOD = ["I'm Kestrel, a small assistant.", "My name is Kestrel.", "I am Kestrel, here to help.",
        "Kestrel. I'm an assistant made with Chatsmith.", "You can call me Kestrel."]
BAD = ["I'm SmolLM, a language model.", "My name is SmolLM.", "I am an AI model called SmolLM.",
       "I don't have a name.", "I am a large language model."]


def kestrel_pairs(count: int, seed: int = 0) -> list[dict]:
    """Votes that always prefer the answer naming Kestrel, on varied questions, all different."""
    rng = random.Random(seed)
    combos = [(q, g, b) for q in QUESTIONS for g in GOOD for b in BAD]
    rng.shuffle(combos)
    return [{"prompt": q, "chosen": g, "rejected": b} for q, g, b in combos[:count]]


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n"
                            for row in rows), encoding="utf-8")
    return path


def kestrel_version(workspace, count: int = 60, name: str = "kestrel-votes") -> Path:
    """A saved preference version of `count` Kestrel pairs (a tenth held out)."""
    from core.data.preference_versions import save_preferences
    from core.data.preferences import DEFAULTS, prepare_preferences

    source = write_jsonl(workspace.uploads / f"{name}.jsonl", kestrel_pairs(count))
    options = dataclasses.replace(DEFAULTS, model="")
    return save_preferences(workspace, prepare_preferences([source], options), name)


def vote_battles(arena, pairs: list[dict], models=("run/sft", "run/dpo"), rater="local:test") -> None:
    """Battles whose answers are the pairs' two answers, each voted for the chosen one (sides shuffled)."""
    rng = random.Random(1)
    for number, pair in enumerate(pairs):
        battle = arena.new_battle(list(models), [{"role": "user", "content": pair["prompt"]}], rater, rng=rng)
        side = rng.choice("ab")
        answers = (pair["chosen"], pair["rejected"]) if side == "a" else (pair["rejected"], pair["chosen"])
        arena.save_answers(battle, *answers)
        arena.vote(battle, side, rater, f"key-{number}")
