"""A training run's log as a person reads it: one plain line per logged step, no Python dicts.

A run's `log.txt` holds the app's lines, the callback's `step 12/30: epoch=0.4, loss=2.061, ...` line per
log, and everything the libraries printed: transformers' own copy of each log as a dict
(`{'loss': '2.061', 'grad_norm': '1.3', ...}`), progress bars and warnings. `readable(raw)` first drops the
libraries' chatter with the Export tab's filter (`core.export.logview`), then turns each step line into
`step 12/30 · loss 2.061 · lr 2.0e-04 · grad norm 1.3 · 3.1 s/step · 171 tokens/s` (an evaluation says
"validation loss"), drops the dicts that repeat a step line and keeps the end-of-training summary as a
sentence. The raw log stays available beside it for whoever debugs a failure.
"""

from __future__ import annotations

import ast
import re

from core.export.logview import readable as without_noise

STEP_LINE = re.compile(r"^step (\d+)/(\d+): (.*)$")
SHOWN = (  # (key in the step line, how it reads, format); the rest (epoch, memory, power) stays in the raw log
    ("loss", "loss", "{:.4g}"), ("eval_loss", "validation loss", "{:.4g}"), ("learning_rate", "lr", "{:.1e}"),
    ("grad_norm", "grad norm", "{:.2g}"), ("reward_margin", "reward margin", "{:.3g}"),
    ("preference_accuracy", "preference accuracy", "{:.0%}"),
    ("eval_reward_margin", "validation reward margin", "{:.3g}"),
    ("eval_preference_accuracy", "validation preference accuracy", "{:.0%}"),
    ("step_s", "", "{:.2g} s/step"), ("tokens_per_s", "", "{:,.0f} tokens/s"),
)


def readable(raw: str, lines: int = 12) -> str:
    """The last `lines` lines of a training log that a user should read."""
    kept = []
    for line in without_noise(raw, lines=len(raw)).splitlines():
        shown = step_line(line) if line.startswith("step ") else dict_line(line) if line.startswith("{") else line
        if shown:
            kept.append(shown)
    return "\n".join(kept[-lines:])


def step_line(line: str) -> str:
    """`step 12/30: loss=2.061, learning_rate=0.0002` → `step 12/30 · loss 2.061 · lr 2.0e-04`; a line
    with nothing a user reads (the closing log's memory and power) gives ""; any other line stays."""
    match = STEP_LINE.match(line)
    if not match:
        return line
    values = {}
    for pair in match.group(3).split(", "):
        key, _, text = pair.partition("=")
        try:
            values[key.strip()] = float(text)
        except ValueError:
            continue
    parts = [f"{name} {form.format(values[key])}".strip() for key, name, form in SHOWN if key in values]
    return " · ".join([f"step {match.group(1)}/{match.group(2)}", *parts]) if parts else ""


def dict_line(line: str) -> str:
    """transformers' copy of a log as a dict: "" when it repeats a step line, a sentence for the summary
    at the end of training, and the line unchanged when it is no dict after all."""
    try:
        logs = ast.literal_eval(line)
    except (ValueError, SyntaxError):
        return line
    if not isinstance(logs, dict):
        return line
    if "train_runtime" not in logs:
        return ""  # the callback's step line above it says the same
    runtime, loss = float(logs["train_runtime"]), logs.get("train_loss")
    return f"training took {runtime:.1f} s" + (f" · mean training loss {float(loss):.4g}" if loss is not None else "")
