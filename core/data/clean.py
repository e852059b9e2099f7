"""Clean and validate one conversation's turns according to `PrepareOptions`.

Contract: `clean(turns, options)` returns `(turns, fixes)`: the turns normalised (NFC, trimmed, HTML
stripped, placeholders filled, empty turns removed, same-role runs merged, a leading assistant greeting or
trailing unanswered user turn trimmed) and the names of the fixes it made, for the report. A conversation
that cannot be repaired under the options raises `RowError` with the drop reason. The result always
starts with an optional system turn, then the user, alternates user → assistant (→ tool → assistant)
and ends with the assistant.
"""

from __future__ import annotations

import html
import re
import unicodedata

from core.data.formats import RowError
from core.data.options import PrepareOptions

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TAG = re.compile(r"<[^>]+>")
BLOCK_END = re.compile(r"</(p|div|li|h[1-6]|pre|tr)>|<br\s*/?>", re.IGNORECASE)
FOLLOWS = {"user": ("assistant",), "assistant": ("user", "tool"), "tool": ("assistant",)}


def clean(turns: list[dict], options: PrepareOptions) -> tuple[list[dict], list[str]]:
    fixes: list[str] = []
    turns = [{"role": t["role"], "content": _normalise(t["content"], options)} for t in turns]
    _fill_placeholders(turns, options.placeholders)
    turns = _remove_empty(turns, options, fixes)
    turns = _join_same_role(turns, options, fixes)
    if not any(t["role"] == "assistant" for t in turns):
        raise RowError("no_assistant", "the conversation has no assistant turn")
    turns = _fix_ends(turns, options, fixes)
    _check_order(turns)
    return turns, fixes


def _normalise(text: str, options: PrepareOptions) -> str:
    if options.html_to_text and ("<" in text or "&" in text):
        text = html_to_text(text)
    if options.nfc:
        if not text.isascii() and not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        text = text.strip()
    return text


def html_to_text(text: str) -> str:
    """Tags out, entities decoded, block ends kept as line breaks.

    A regex rather than an HTML parser library: chat dumps hold fragments (`<div class=markdown>`,
    `<pre><code>`) that need no DOM, and this keeps the dependency list short.
    """
    text = BLOCK_END.sub("\n", text)
    text = html.unescape(TAG.sub("", text))
    return re.sub(r"\n{3,}", "\n\n", text)


def _fill_placeholders(turns: list[dict], values: dict[str, str]) -> None:
    for turn in turns:
        if "{{" not in turn["content"]:
            continue
        missing = sorted({name for name in PLACEHOLDER.findall(turn["content"]) if name not in values})
        if missing:
            raise RowError("unfilled_placeholder", "no value for " + ", ".join(f"{{{{{m}}}}}" for m in missing))
        turn["content"] = PLACEHOLDER.sub(lambda match: values[match.group(1)], turn["content"])


def _remove_empty(turns: list[dict], options: PrepareOptions, fixes: list[str]) -> list[dict]:
    kept = [t for t in turns if t["content"].strip()]
    if len(kept) < len(turns):
        if not options.drop_empty_turns:
            raise RowError("empty_turn", f"{len(turns) - len(kept)} turn(s) have no text")
        fixes.append("empty_turns_removed")
    return kept


def _join_same_role(turns: list[dict], options: PrepareOptions, fixes: list[str]) -> list[dict]:
    joined: list[dict] = []
    for turn in turns:
        if joined and joined[-1]["role"] == turn["role"]:
            if options.same_role == "drop":
                raise RowError("same_role_turns", f"two {turn['role']} turns in a row")
            joined[-1] = {"role": turn["role"], "content": joined[-1]["content"] + "\n\n" + turn["content"]}
            if "same_role_merged" not in fixes:
                fixes.append("same_role_merged")
        else:
            joined.append(turn)
    return joined


def _fix_ends(turns: list[dict], options: PrepareOptions, fixes: list[str]) -> list[dict]:
    system = turns[:1] if turns[0]["role"] == "system" else []
    body = turns[len(system):]
    if body and body[0]["role"] == "user" and body[-1]["role"] == "assistant":
        return turns  # the common case, checked first because it is nearly every row
    start = next((i for i, t in enumerate(body) if t["role"] == "user"), len(body))
    end = max((i + 1 for i, t in enumerate(body) if t["role"] == "assistant"), default=0)
    if start > 0:
        if options.ends == "drop":
            raise RowError("starts_with_assistant", f"the first turn is {body[0]['role']}, not the user")
        fixes.append("leading_turns_trimmed")
    if end < len(body):
        if options.ends == "drop":
            raise RowError("ends_without_assistant", f"the last turn is {body[-1]['role']}, not the assistant")
        fixes.append("trailing_turns_trimmed")
    body = body[start:end]
    if not body:
        raise RowError("no_assistant", "no assistant turn answers a user turn")
    return system + body


def _check_order(turns: list[dict]) -> None:
    body = turns[1:] if turns[0]["role"] == "system" else turns
    for index, (before, after) in enumerate(zip(body, body[1:]), start=1):
        if after["role"] not in FOLLOWS.get(before["role"], ()):
            raise RowError("not_alternating", f"turn {index + 1} is {after['role']} after {before['role']}")
