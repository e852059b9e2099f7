"""Recognise the four chat formats and turn one row of any of them into a list of turns.

Contract: `detect(rows)` looks at a sample of rows and returns a `Detection` (format or "", the evidence
in words, the fields seen) without raising. `to_turns(row, format, mapping)` returns
`(turns, extra)`, where turns are `{"role", "content"}` dicts with roles already mapped to
system/user/assistant/tool and `extra` holds top-level keys worth keeping (`tools`); it raises `RowError`
with a drop reason for a row it cannot read. Cleaning and validation happen later (clean.py).

ShareGPT's `function_call` turns become assistant turns holding the call (so the model learns to call the
tool) and `observation` turns become tool turns holding the result, as LLaMA-Factory trains them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.data.options import ColumnMapping

SAMPLE_ROWS = 200
ROLES = {
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "model": "assistant", "function_call": "assistant",
    "system": "system",
    "tool": "tool", "observation": "tool", "function": "tool", "ipython": "tool",
}
EVIDENCE = {
    "alpaca": "have `instruction` and `output` fields (Alpaca)",
    "sharegpt": "have `conversations`, a list of turns (ShareGPT)",
    "ultrachat": "have `data`, a list of alternating texts (UltraChat)",
    "messages": "have `messages`, a list of role/content turns (OpenAI / HF messages)",
}


class RowError(Exception):
    """A row that cannot become a conversation; `reason` is the drop-count key, `detail` the words."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Detection:
    format: str
    evidence: str
    fields: list[str] = field(default_factory=list)


def row_format(row: Any) -> str:
    """The format a single row looks like, or "" when it looks like none."""
    if not isinstance(row, dict):
        return ""
    if "messages" in row and isinstance(row["messages"], list):
        return "messages"
    if "conversations" in row and isinstance(row["conversations"], list):
        return "sharegpt"
    if "data" in row and isinstance(row["data"], list):
        return "ultrachat"
    if "instruction" in row and "output" in row:
        return "alpaca"
    return ""


def detect(rows: list[tuple[int, Any]]) -> Detection:
    sample = [row for _, row in rows[:SAMPLE_ROWS]]
    fields = sorted({key for row in sample if isinstance(row, dict) for key in row})
    if not sample:
        return Detection("", "the file holds no rows", fields)
    counts = Counter(row_format(row) for row in sample)
    best, hits = max(((name, n) for name, n in counts.items() if name), key=lambda x: x[1], default=("", 0))
    if not best or hits * 2 <= len(sample):
        seen = ", ".join(f"`{name}`" for name in fields[:12]) or "none"
        return Detection("", f"no known format in {len(sample)} sampled rows; fields seen: {seen}", fields)
    others = ", ".join(f"{n} {name or 'unknown'}" for name, n in counts.items() if name != best)
    mixed = f"; mixed with {others} (those rows are dropped)" if others else ""
    return Detection(best, f"{hits} of {len(sample)} sampled rows {EVIDENCE[best]}{mixed}", fields)


def to_turns(row: Any, format: str, mapping: ColumnMapping | None = None) -> tuple[list[dict], dict]:
    if not isinstance(row, dict):
        raise RowError("not_a_record", f"expected an object, found {_kind(row)}")
    if mapping is not None and mapping.is_set:
        if mapping.messages:
            return _chat_turns(row, mapping.messages, mapping.role, mapping.content), _extra(row)
        return _alpaca_turns(row, mapping.instruction, mapping.input, mapping.output, mapping.system), {}
    actual = row_format(row)
    if actual != format:
        raise RowError("other_format", f"this row looks like {actual or 'no known format'}, "
                                       f"the file like {format}")
    if format == "alpaca":
        return _alpaca_turns(row, "instruction", "input", "output", "system"), {}
    if format == "sharegpt":
        turns = _chat_turns(row, "conversations", "from", "value", fallback=("role", "content"))
        return _with_system(row, turns), _extra(row)
    if format == "ultrachat":
        return _ultrachat_turns(row), {}
    return _with_system(row, _chat_turns(row, "messages", "role", "content")), _extra(row)


def _alpaca_turns(row: dict, instruction: str, input_: str, output: str, system: str) -> list[dict]:
    prompt = _text(row, instruction)
    extra = _text(row, input_, optional=True) if input_ else ""
    turns = [{"role": "system", "content": _text(row, system, optional=True)}] if row.get(system) else []
    for pair in _history(row):
        turns += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    turns.append({"role": "user", "content": f"{prompt}\n\n{extra}" if extra.strip() else prompt})
    turns.append({"role": "assistant", "content": _text(row, output)})
    return turns


def _history(row: dict) -> list:
    history = row.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
            for pair in history):
        raise RowError("bad_field_type", "field `history` must be a list of [user, assistant] text pairs")
    return history


def _chat_turns(row: dict, key: str, role_key: str, content_key: str, fallback=None) -> list[dict]:
    turns = row.get(key)
    if not isinstance(turns, list):
        raise RowError("bad_field_type", f"field `{key}` is {_kind(turns)}, expected a list of turns")
    out = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError("bad_field_type", f"`{key}[{index}]` is {_kind(turn)}, expected an object")
        keys = (role_key, content_key) if role_key in turn or not fallback else fallback
        speaker = turn.get(keys[0])
        role = ROLES.get(speaker.strip().lower()) if isinstance(speaker, str) else None
        if role is None:
            raise RowError("unknown_role", f"`{key}[{index}]` has role {speaker!r}")
        out.append({"role": role, "content": _content(turn.get(keys[1]), f"{key}[{index}]")})
    return out


def _content(value: Any, where: str) -> str:
    """A string, or the OpenAI list-of-parts form with text parts only."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "\n".join(part["text"] for part in value)
    raise RowError("bad_field_type", f"content of `{where}` is {_kind(value)}, expected text")


def _ultrachat_turns(row: dict) -> list[dict]:
    texts = row["data"]
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise RowError("bad_field_type", f"`data[{index}]` is {_kind(text)}, expected text")
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": text} for i, text in enumerate(texts)]


def _with_system(row: dict, turns: list[dict]) -> list[dict]:
    system = row.get("system")
    if isinstance(system, str) and system.strip() and not (turns and turns[0]["role"] == "system"):
        return [{"role": "system", "content": system}, *turns]
    return turns


def _extra(row: dict) -> dict:
    tools = row.get("tools")
    return {"tools": tools} if tools not in (None, "", []) else {}


def _text(row: dict, key: str, optional: bool = False) -> str:
    value = row.get(key)
    if value is None and optional:
        return ""
    if isinstance(value, str):
        return value
    if value is None:
        raise RowError("missing_field", f"field `{key}` is missing")
    raise RowError("bad_field_type", f"field `{key}` is {_kind(value)}, expected text")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
