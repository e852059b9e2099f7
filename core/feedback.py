"""Chat feedback: thumbs up / down on an answer, and answers edited into better ones, kept for training.

Contract: `rate(workspace, conversation, index, model, liked=..., edit=...)` stores one rating of the
assistant answer at `conversation[index]`, with the conversation before it as the prompt, in
`workspace/feedback/chat-feedback.jsonl`; `read(workspace)` returns every stored rating. A rating is keyed
by its prompt and answer, so rating the same answer again replaces the earlier rating rather than adding
one. An edit means the original answer was not good enough: it is stored as rating "down" with the edit,
which the Data stage turns into a pair (edit chosen, original rejected); `apply_edit` does that for an edit
made in the chat and returns the conversation with the edit in place. The file is rewritten whole
under a lock (as the chat examples are), so two sessions never lose a line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from pathlib import Path

from core import atomic
from core.errors import BadInputError
from core.workspace import Workspace

FEEDBACK_FILE = "chat-feedback.jsonl"


def path(workspace: Workspace) -> Path:
    return workspace.root / "feedback" / FEEDBACK_FILE


def rate(workspace: Workspace, conversation: list[dict], index: int, model: str, liked: bool | None = None,
         edit: str | None = None) -> dict:
    """Store (or replace) the rating of `conversation[index]`; `liked=None` without an edit removes it."""
    if not 0 <= index < len(conversation) or conversation[index].get("role") != "assistant":
        raise BadInputError("Only an assistant answer can be rated.", "Rate one of the model's answers.")
    prompt = [{"role": m["role"], "content": m["content"]} for m in conversation[:index] if m["role"] != "assistant"
              or m["content"].strip()]
    if not any(m["role"] == "user" for m in prompt):
        raise BadInputError("This answer has no question before it.", "Rate an answer to a question.")
    answer = conversation[index]["content"]
    edit = (edit or "").strip() or None
    row = {"id": _key(prompt, answer), "created": round(time.time(), 3), "model": model, "prompt": prompt,
           "answer": answer, "rating": "down" if edit else ({True: "up", False: "down"}.get(liked)), "edit": edit}
    _replace(workspace, row, remove=row["rating"] is None)
    return row


def apply_edit(workspace: Workspace, conversation: list[dict], index: int, text: str,
               model: str) -> tuple[list[dict], dict | None]:
    """The conversation with message `index` replaced by `text`; an edited answer is also stored as a
    better answer (a pair for training), so the chat continues from the edit and the edit is kept."""
    if not 0 <= index < len(conversation):
        raise BadInputError("That message is no longer in the conversation.", "Edit a message that is shown.")
    text = text if isinstance(text, str) else str(text)
    row = None
    if conversation[index]["role"] == "assistant" and text.strip() != conversation[index]["content"].strip():
        row = rate(workspace, conversation, index, model, edit=text)
    edited = [*conversation[:index], {"role": conversation[index]["role"], "content": text}, *conversation[index + 1:]]
    return edited, row


def read(workspace: Workspace) -> list[dict]:
    target = path(workspace)
    if not target.is_file():
        return []
    rows = []
    for line in target.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a torn line is impossible with whole-file writes; skipping keeps the rest readable
    return rows


def _key(prompt: list[dict], answer: str) -> str:
    return hashlib.sha256(json.dumps([prompt, answer], ensure_ascii=False).encode()).hexdigest()[:16]


def _replace(workspace: Workspace, row: dict, remove: bool) -> None:
    target = path(workspace)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{FEEDBACK_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = [other for other in read(workspace) if other["id"] != row["id"]]
        atomic.write_jsonl(target, rows if remove else [*rows, row])
