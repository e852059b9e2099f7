"""Which models can fight, and how a battle's two answers are produced side by side.

A contender is a `core.inference.ModelChoice` named by a stable key (its `id`, else its label): the
key is what the battles table stores and what the leaderboard shows. Both answers are generated at
once in two threads and yielded as pairs of growing strings, so the page can stream them side by side.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from core import inference
from core.errors import BadInputError
from core.workspace import Workspace


def list_contenders(workspace: Workspace) -> dict[str, inference.ModelChoice]:
    """Every model a user can chat with, by key, in the Chat stage's order."""
    return {contender_key(choice): choice for choice in inference.list_choices(workspace)}


def contender_key(choice: inference.ModelChoice) -> str:
    return getattr(choice, "id", "") or choice.label


def find_contender(workspace: Workspace, key: str) -> inference.ModelChoice | None:
    """The model behind a key: a listed one, or `KEY+docs:COLLECTION`, that model answering from documents
    (its own leaderboard entry, so "fine-tune" and "fine-tune + docs" are rated apart)."""
    from core.documents.grounding import DOCS_MARK, with_documents
    from core.documents.store import find_collection

    contenders = list_contenders(workspace)
    base, mark, collection = key.partition(DOCS_MARK)
    if not mark:
        return contenders.get(key)
    try:
        find_collection(workspace, collection)
    except BadInputError:
        return None
    return with_documents(contenders[base], collection) if base in contenders else None


def answer_turns(backend, item, settings, last_only: bool = False) -> Iterator[str]:
    """Answer a PromptItem turn by turn (MT-bench style); yields the transcript as it grows.

    With `last_only`, yields only the answer to the last turn (what metrics score).
    """
    messages: list[dict] = list(item.history)
    shown = ""
    for number, turn in enumerate(item.turns):
        messages.append({"role": "user", "content": turn})
        prefix = "" if last_only else shown + (f"**Turn {number + 1}:** " if len(item.turns) > 1 else "")
        answer = ""
        for piece in backend.stream(list(messages), settings):
            answer += piece
            yield prefix + answer
        messages.append({"role": "assistant", "content": answer})
        shown = prefix + answer + "\n\n"
    yield shown.rstrip() if not last_only else answer


def stream_pair(backends: tuple, item, settings) -> Iterator[tuple[str, str]]:
    """Both answers at once: yields (answer_a, answer_b) each time either grows.

    A failure on one side ends that side with a short notice; the other side carries on. The notice
    leaves out the error's text, which may name the model's file and so break the blind.
    """
    updates: queue.Queue = queue.Queue()
    texts = ["", ""]

    def produce(side: int) -> None:
        try:
            for text in answer_turns(backends[side], item, settings):
                updates.put((side, text))
        except Exception as error:  # the battle stays valid: "both bad" is a fair vote for it
            updates.put((side, texts[side] + f"\n\n❌ This model failed to answer ({type(error).__name__})."))
        finally:
            updates.put((side, None))

    for side in (0, 1):
        threading.Thread(target=produce, args=(side,), daemon=True, name=f"battle-side-{side}").start()
    running = 2
    while running:
        side, text = updates.get()
        if text is None:
            running -= 1
            continue
        texts[side] = text
        yield texts[0], texts[1]


def open_pair(workspace: Workspace, keys: tuple[str, str]) -> tuple:
    """The two backends behind a battle, looked up from the server's record (never from the page)."""
    choices = [find_contender(workspace, key) for key in keys]
    missing = [key for key, choice in zip(keys, choices) if choice is None]
    if missing:
        raise BadInputError(f"Model {missing[0]} is no longer available.", "Refresh the contender list.")
    # A grounded contender answers without its source list, which would tell the raters who read documents.
    return tuple(_blind(inference.open_backend(choice, workspace)) for choice in choices)


def _blind(backend):
    return backend.without_citations() if hasattr(backend, "without_citations") else backend


def describe_choice(choice: inference.ModelChoice) -> dict:
    """A JSON-friendly description, stored with metrics and reports."""
    return {"kind": choice.kind, "model": choice.model, "label": choice.label, "id": contender_key(choice),
            "adapter": str(choice.adapter) if choice.adapter else None,
            "gguf": str(choice.gguf) if choice.gguf else None, "documents": getattr(choice, "documents", "")}


def choice_from_description(data: dict) -> inference.ModelChoice:
    fields = {"kind": data["kind"], "model": data.get("model") or "default", "label": data.get("label", ""),
              "adapter": Path(data["adapter"]) if data.get("adapter") else None,
              "gguf": Path(data["gguf"]) if data.get("gguf") else None}
    if "id" in inference.ModelChoice.__dataclass_fields__:
        fields["id"] = data.get("id", "")
    if data.get("documents"):
        fields["documents"] = data["documents"]
    return inference.ModelChoice(**fields)
