"""What a chat leaves behind: the conversation saved as JSON or Markdown, and training examples.

"Save as training example" appends `{"id", "source": "chat", "messages"}` to `uploads/chat-examples.jsonl`,
which the Data stage reads as OpenAI-messages JSONL. Files are written atomically; the examples file is
rewritten whole under a lock, so two sessions never lose a line, and an example already there is not added
twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from core import atomic
from core.errors import BadInputError
from core.workspace import Workspace

EXAMPLES_FILE = "chat-examples.jsonl"


def to_markdown(messages: list[dict], model: str) -> str:
    lines = [f"# Chat with {model}", "", f"_Saved {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC_", ""]
    for message in messages:
        lines += [f"**{message['role'].capitalize()}:**", "", message["content"], ""]
    return "\n".join(lines)


def save_conversation(workspace: Workspace, messages: list[dict], model: str, fmt: str) -> Path:
    """The conversation as `exports/chats/chat-TIME.json` or `.md`; returns the file."""
    if not messages:
        raise BadInputError("There is nothing to save yet.", "Chat first, then save.")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    target = workspace.exports / "chats" / f"chat-{stamp}.{'md' if fmt == 'markdown' else 'json'}"
    if fmt == "markdown":
        return atomic.write_text(target, to_markdown(messages, model))
    return atomic.write_json(target, {"model": model, "saved": stamp, "messages": messages})


def save_training_example(workspace: Workspace, messages: list[dict]) -> tuple[Path, bool]:
    """Append the conversation to the chat examples; returns (file, added) — False if already there."""
    kept = [{"role": m["role"], "content": m["content"]} for m in messages if m["content"].strip()]
    if not any(m["role"] == "user" for m in kept) or kept[-1]["role"] != "assistant":
        raise BadInputError("A training example needs at least one question and the answer to it.",
                            "Finish an exchange (or edit the answer), then save it.")
    record_id = "chat-" + hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]
    target = workspace.uploads / EXAMPLES_FILE
    with open(workspace.uploads / f".{EXAMPLES_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = target.read_text(encoding="utf-8") if target.exists() else ""
        if f'"id": "{record_id}"' in existing:
            return target, False
        line = json.dumps({"id": record_id, "source": "chat", "messages": kept}, ensure_ascii=False)
        atomic.write_text(target, existing + line + "\n")
    return target, True
