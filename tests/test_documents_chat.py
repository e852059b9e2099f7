"""Answers grounded in a collection, with a fake model: numbered sources in the question, the history kept,
the context budget respected, citations at the end, and "nothing relevant" without a citation."""

from __future__ import annotations

import pytest

from core import inference
from core.documents import open_collection
from core.documents.grounding import GroundedBackend, ground, with_documents
from core.inference import GenerationSettings
from tests.test_chat_api import FakeBackend

SETTINGS = GenerationSettings(max_new_tokens=64)
HELLO = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi, how can I help?"}]


@pytest.fixture
def collection(shipped_documents):
    return open_collection(shipped_documents, "shipped")


def test_the_question_carries_numbered_sources_and_the_history_is_kept(collection):
    question = {"role": "user", "content": "网上买的东西，收到后几天内可以无理由退货？"}
    grounding = ground(FakeBackend(), collection, [*HELLO, question], SETTINGS)

    assert grounding.messages[:2] == HELLO and grounding.note == ""
    asked = grounding.messages[-1]["content"]
    assert asked.startswith("请根据下面编号的资料回答问题") and asked.endswith("问题：" + question["content"])
    first = grounding.citations[0]
    assert first.number == 1 and "七日内退货" in first.text and first.where.startswith("consumer-rights-law.md · ")
    assert f"[1] ({first.where})\n{first.text}" in asked
    assert first.id == f"{collection.id}#{collection.chunks[int(first.id.split('#')[1])]['index']}"


def test_a_collection_with_nothing_relevant_says_so_and_cites_nothing(collection):
    question = [{"role": "user", "content": "How do I bake sourdough bread at home?"}]
    grounding = ground(FakeBackend(), collection, question, SETTINGS)
    assert grounding.messages == question and grounding.citations == []
    assert grounding.note == ("Nothing in the collection 'shipped' is relevant to this question; "
                              "this answer does not use it.")
    answer = "".join(GroundedBackend(FakeBackend(words=3), collection).stream(question, SETTINGS))
    assert answer == "word0 word1 word2 \n\n(" + grounding.note + ")" and "[1]" not in answer


def test_sources_take_only_what_fits_the_context(collection):
    question = [{"role": "user", "content": "What may Congress do about taxes, money, the army and the militia?"}]
    roomy = ground(FakeBackend(context_length=4096), collection, question, SETTINGS)
    tight = ground(FakeBackend(context_length=900), collection, question, SETTINGS)
    assert len(roomy.citations) == 4 and 1 <= len(tight.citations) < 4
    assert [c.id for c in tight.citations] == [c.id for c in roomy.citations][:len(tight.citations)]  # best first
    assert FakeBackend().count_tokens(tight.messages) <= 900 - SETTINGS.max_new_tokens
    assert FakeBackend().count_tokens(tight.messages) - FakeBackend().count_tokens(question) <= 450  # half the window


def test_old_turns_make_room_for_the_sources_first(collection):
    backend = GroundedBackend(FakeBackend(context_length=1200), collection)
    history = [{"role": role, "content": "word " * 60} for _ in range(6) for role in ("user", "assistant")]
    question = {"role": "user", "content": "Who is the commander in chief of the army and navy?"}
    kept, dropped = inference.fit_context(backend, [*history, question], SETTINGS)
    assert dropped > 0 and kept[-1] == question
    grounding = backend.ground(kept, SETTINGS)
    assert grounding.citations and "Commander in Chief" in grounding.citations[0].text


def test_an_answer_ends_with_its_sources_except_in_blind_comparisons(collection):
    question = [{"role": "user", "content": "Can soldiers be quartered in a house in time of peace?"}]
    backend = GroundedBackend(FakeBackend(words=2), collection)
    answer = "".join(backend.stream(question, SETTINGS))
    assert answer.startswith("word0 word1 \n\nSources:\n[1] bill-of-rights.md · ")
    assert f"({collection.id}#" in answer
    blind = "".join(backend.without_citations().stream(question, SETTINGS))
    assert blind == "word0 word1 "
    assert "No soldier shall" in backend.backend.received[-1][-1]["content"]  # the blind one still read it


def test_a_model_with_documents_is_named_and_opened_as_one(shipped_documents, monkeypatch):
    fake = FakeBackend()
    monkeypatch.setattr(inference, "gguf_backend", lambda path: fake)
    choice = with_documents(inference.ModelChoice(kind="gguf", id="default", label="Default"), "shipped")
    assert (choice.id, choice.documents) == ("default+docs:shipped", "shipped")
    backend = inference.open_backend(choice, shipped_documents)
    assert isinstance(backend, GroundedBackend) and backend.backend is fake
