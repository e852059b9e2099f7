"""Answers grounded in a document collection: the relevant chunks that fit the context, numbered citations,
and an honest "nothing relevant" when the collection has nothing to offer.

Contract: `ground(backend, collection, messages, settings)` returns a `Grounding`: the messages to send (the
conversation as it is, except that the last question carries the numbered sources and an instruction to
cite them), the `Citation`s it offered, and a `note` that is non-empty when no chunk was relevant (then the
messages are unchanged and there are no citations). Sources are added best first while the prompt still
fits the context window with room for the answer, and take at most `RetrievalSettings.context_share` of it.

`GroundedBackend` wraps any chat backend (`stream`, `count_tokens`, `context_length`) so that every answer is
grounded; its `count_tokens` reserves the sources' room, so `core.inference.fit_context` drops old turns
before it squeezes out the sources. With `cite=True` (the API) an answer ends with its numbered sources, or
with the "nothing relevant" note; the arena and the metrics use `cite=False`, so the answers they compare
carry no list that would tell the raters which side read documents.

A model named `MODEL+docs:COLLECTION` (the API's model id, an arena contender) is `MODEL` grounded in
`COLLECTION`: `with_documents(choice, name)` builds that choice, `core.inference.open_backend` opens it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from core.documents.lexical import CHINESE_RUN
from core.documents.settings import RetrievalSettings
from core.documents.store import Collection, Hit, open_collection
from core.workspace import Workspace

DOCS_MARK = "+docs:"
INSTRUCTIONS = {
    "en": ("Answer the question from the numbered sources below. Cite each source you use by its number in "
           "square brackets, like [1]. If the sources do not hold the answer, say so."),
    "zh": "请根据下面编号的资料回答问题，并用方括号标注所用资料的编号，例如 [1]。如果资料中没有答案，请直接说明。",
}
QUESTION_LABEL = {"en": "Question: ", "zh": "问题："}


@dataclass(frozen=True)
class Citation:
    number: int
    id: str
    """`<collection folder>#<chunk index>`: stable for the life of the collection."""
    where: str
    """Source file, page and heading path: "laws.pdf, page 3 · Chapter 2"."""
    text: str
    score: float


@dataclass(frozen=True)
class Grounding:
    messages: list[dict]
    citations: list[Citation]
    note: str = ""


def ground(backend, collection: Collection, messages: list[dict], settings,
           retrieval: RetrievalSettings = RetrievalSettings()) -> Grounding:
    question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    hits = collection.search(question, retrieval) if question.strip() else []
    if not hits:
        return Grounding(list(messages), [], nothing_relevant(collection.name))
    room = backend.context_length - settings.max_new_tokens
    share = int(backend.context_length * retrieval.context_share)
    plain = backend.count_tokens(messages)
    while hits:
        grounded = _with_sources(messages, question, hits)
        if backend.count_tokens(grounded) <= room and backend.count_tokens(grounded) - plain <= share:
            citations = [_citation(collection, number, hit) for number, hit in enumerate(hits, start=1)]
            return Grounding(grounded, citations)
        hits = hits[:-1]
    return Grounding(list(messages), [], f"The relevant passages of '{collection.name}' do not fit this model's "
                                         "context next to the conversation; this answer does not use them.")


def nothing_relevant(name: str) -> str:
    return f"Nothing in the collection '{name}' is relevant to this question; this answer does not use it."


def sources_text(grounding: Grounding) -> str:
    """What an API answer ends with: its numbered sources, or the note."""
    if not grounding.citations:
        return f"\n\n({grounding.note})" if grounding.note else ""
    return "\n\nSources:\n" + "\n".join(f"[{c.number}] {c.where} ({c.id})" for c in grounding.citations)


class GroundedBackend:
    """Any chat backend whose answers are grounded in one collection."""

    def __init__(self, backend, collection: Collection, retrieval: RetrievalSettings = RetrievalSettings(),
                 cite: bool = True):
        self.backend, self.collection, self.retrieval, self.cite = backend, collection, retrieval, cite
        self.context_length = backend.context_length
        chunk_tokens = collection.meta["settings"]["chunk_tokens"]
        self.reserve = min(int(self.context_length * retrieval.context_share), retrieval.top_k * chunk_tokens + 64)

    def count_tokens(self, messages: list[dict]) -> int:
        return self.backend.count_tokens(messages) + self.reserve

    def ground(self, messages: list[dict], settings) -> Grounding:
        return ground(self.backend, self.collection, messages, settings, self.retrieval)

    def stream(self, messages: list[dict], settings, stop: threading.Event | None = None,
               usage: dict | None = None) -> Iterator[str]:
        grounding = self.ground(messages, settings)
        yield from self.backend.stream(grounding.messages, settings, stop=stop, usage=usage)
        if self.cite and not (stop and stop.is_set()):
            yield sources_text(grounding)

    def without_citations(self) -> "GroundedBackend":
        return GroundedBackend(self.backend, self.collection, self.retrieval, cite=False)


def grounded(backend, collection_name: str, workspace: Workspace) -> GroundedBackend:
    return GroundedBackend(backend, open_collection(workspace, collection_name))


def with_documents(choice, collection_name: str):
    """`choice` answering from `collection_name`: id `ID+docs:NAME`, what the API and the arena name it."""
    return replace(choice, documents=collection_name, id=f"{choice.id}{DOCS_MARK}{collection_name}",
                   label=f"{choice.label or choice.id} + documents '{collection_name}'")


def language(text: str) -> str:
    return "zh" if CHINESE_RUN.search(text) else "en"


def _with_sources(messages: list[dict], question: str, hits: list[Hit]) -> list[dict]:
    lang = language(question)
    sources = "\n\n".join(f"[{number}] ({hit.where})\n{hit.chunk['text']}" for number, hit in enumerate(hits, start=1))
    content = f"{INSTRUCTIONS[lang]}\n\n{sources}\n\n{QUESTION_LABEL[lang]}{question}"
    last = max(index for index, message in enumerate(messages) if message["role"] == "user")
    return [*messages[:last], {"role": "user", "content": content}, *messages[last + 1:]]


def _citation(collection: Collection, number: int, hit: Hit) -> Citation:
    return Citation(number, collection.chunk_id(hit.chunk), hit.where, hit.chunk["text"], round(hit.score, 4))
