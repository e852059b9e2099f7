"""Recognise the public preference formats and turn one row into a canonical pair or unpaired example.

Contract: `detect(rows)` names the format of a file from a sample of its rows ("pairs", "hh", "kto", or ""
with the evidence in words) without raising. `to_example(row)` returns `("pair", prompt, chosen,
rejected)` or `("unpaired", prompt, completion, label)`, where the prompt is a list of `{"role",
"content"}` turns ending with the user and each answer is one assistant text; it raises `RowError` with a
reason for a row it cannot use. Cleaning (NFC, placeholders) and the checks that need clean text
(chosen equal to rejected) happen in `core.data.preferences`.

The formats people bring:

* **pairs**: `prompt` / `chosen` / `rejected`, as UltraFeedback-binarized and TRL's preference datasets
  hold them: the prompt a string or a list of turns, each answer a string, a list holding one assistant
  turn, or the whole conversation (its turns before the answer must then be the prompt);
* **hh**: Anthropic HH-RLHF, `chosen` and `rejected` transcripts ("\\n\\nHuman: … \\n\\nAssistant: …") that
  share every turn but the last answer;
* **kto**: `prompt` / `completion` / `label` (true = a desirable answer), TRL's unpaired format.
"""

from __future__ import annotations

import re
from typing import Any

from core.data.formats import ROLES, RowError

FORMATS = ("pairs", "hh", "kto")
SAMPLE_ROWS = 200
EVIDENCE = {
    "pairs": "have `prompt`, `chosen` and `rejected` (UltraFeedback-binarized / TRL preference pairs)",
    "hh": "have `chosen` and `rejected` Human/Assistant transcripts (Anthropic HH)",
    "kto": "have `prompt`, `completion` and `label` (KTO, unpaired)",
}
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
TRUE_LABELS = {"true", "1", "yes", "good", "desirable", "up"}
FALSE_LABELS = {"false", "0", "no", "bad", "undesirable", "down"}


def row_format(row: Any) -> str:
    if not isinstance(row, dict):
        return ""
    if "completion" in row and "label" in row:
        return "kto"
    if "chosen" in row and "rejected" in row:
        if "prompt" in row or isinstance(row["chosen"], list):
            return "pairs"
        if isinstance(row["chosen"], str) and "Assistant:" in row["chosen"]:
            return "hh"
    return ""


def detect(rows: list[tuple[int, Any]]) -> tuple[str, str]:
    """(format, evidence) from the first rows; ("", why not) when no preference format fits."""
    sample = [row for _, row in rows[:SAMPLE_ROWS]]
    if not sample:
        return "", "no rows"
    seen = [row_format(row) for row in sample]
    best = max(FORMATS, key=seen.count)
    if not seen.count(best):
        fields = sorted({key for row in sample if isinstance(row, dict) for key in row})[:12]
        return "", ("no preference format fits (fields seen: " + (", ".join(fields) or "none") + "); expected "
                    "prompt/chosen/rejected, Human/Assistant chosen/rejected transcripts, or prompt/completion/label")
    return best, f"{seen.count(best)} of {len(sample)} sampled rows {EVIDENCE[best]}"


def to_example(row: Any) -> tuple:
    """The row in whichever preference format it is in: a file may mix pairs and unpaired answers."""
    format_ = row_format(row)
    if not format_:
        raise RowError("other_format", "the row is in no preference format (prompt/chosen/rejected, "
                                       "chosen/rejected transcripts, or prompt/completion/label)")
    if format_ == "kto":
        return ("unpaired", _prompt(row["prompt"]), _answer(row["completion"], "completion"), _label(row["label"]))
    if format_ == "hh":
        chosen, rejected = _transcript(row["chosen"], "chosen"), _transcript(row["rejected"], "rejected")
        return ("pair", *_split_pair(chosen, rejected, None))
    return ("pair", *_split_pair(_turns(row["chosen"], "chosen"), _turns(row["rejected"], "rejected"),
                                 row.get("prompt")))


def _split_pair(chosen: list[dict], rejected: list[dict], prompt: Any) -> tuple[list[dict], str, str]:
    """(prompt turns, chosen text, rejected text): the turns before each answer must be one prompt."""
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        if not turns or turns[-1]["role"] != "assistant":
            raise RowError("no_answer", f"`{name}` does not end with an assistant answer")
    before_chosen, before_rejected = chosen[:-1], rejected[:-1]
    if before_chosen and before_rejected and before_chosen != before_rejected:
        raise RowError("prompts_differ", "`chosen` and `rejected` answer different prompts")
    context = before_chosen or before_rejected
    given = _prompt(prompt) if prompt not in (None, "", []) else []
    if given and context and not _same_prompt(given, context):
        raise RowError("prompts_differ", "`prompt` differs from the conversation in `chosen` / `rejected`")
    turns = context or given
    if not turns:
        raise RowError("no_prompt", "the pair has no prompt")
    return turns, chosen[-1]["content"], rejected[-1]["content"]


def _same_prompt(given: list[dict], context: list[dict]) -> bool:
    """A string prompt matches a conversation whose last user turn is that string (UltraFeedback)."""
    if given == context:
        return True
    return len(given) == 1 and context[-1]["role"] == "user" and given[0]["content"] == context[-1]["content"]


def _prompt(value: Any) -> list[dict]:
    turns = _turns(value, "prompt", default_role="user")
    if not turns:
        raise RowError("no_prompt", "the prompt is empty")
    return turns


def _answer(value: Any, name: str) -> str:
    turns = _turns(value, name)
    if len(turns) != 1 or turns[0]["role"] != "assistant":
        raise RowError("bad_field_type", f"`{name}` must be one answer (a string or one assistant turn)")
    return turns[0]["content"]


def _turns(value: Any, name: str, default_role: str = "assistant") -> list[dict]:
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list):
        raise RowError("bad_field_type", f"`{name}` must be a string or a list of turns")
    turns = []
    for turn in value:
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
            raise RowError("bad_field_type", f"`{name}` holds a turn without text content")
        role = ROLES.get(str(turn.get("role", turn.get("from", ""))).lower())
        if role is None:
            raise RowError("unknown_role", f"`{name}` holds a turn with role {turn.get('role')!r}")
        turns.append({"role": role, "content": turn["content"]})
    return turns


def _transcript(text: Any, name: str) -> list[dict]:
    """Anthropic HH's "\\n\\nHuman: …\\n\\nAssistant: …" transcript as turns."""
    if not isinstance(text, str):
        raise RowError("bad_field_type", f"`{name}` must be a Human/Assistant transcript")
    parts = HH_TURN.split(text if text.startswith("\n\n") else "\n\n" + text)
    if parts[0].strip():
        raise RowError("bad_field_type", f"`{name}` does not start with a Human: turn")
    speakers, texts = parts[1::2], parts[2::2]
    return [{"role": "user" if who == "Human" else "assistant", "content": said}
            for who, said in zip(speakers, texts)]


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_LABELS | FALSE_LABELS:
        return text in TRUE_LABELS
    raise RowError("bad_label", f"label {value!r} is neither true nor false")
