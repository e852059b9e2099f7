"""RAG against fine-tune, blind: a contender given a collection fights under its own name, hidden until
the vote, without a source list that would give it away; automatic metrics run with a collection too."""

from __future__ import annotations

import pytest

from core import inference
from core.documents.grounding import with_documents
from core.errors import BadInputError
from core.evaluate import metrics, session
from core.evaluate.arena import Arena
from core.evaluate.contenders import choice_from_description, describe_choice
from core.evaluate.prompts import PromptItem
from core.inference import GenerationSettings
from tests.test_chat_api import FakeBackend

QUESTION = PromptItem("typed", ("How long may federal judges hold their offices?",),
                      reference="During good Behaviour.")


@pytest.fixture
def fake_model(monkeypatch):
    backend = FakeBackend(words=3)
    monkeypatch.setattr(inference, "gguf_backend", lambda path: backend)
    return backend


def test_an_arena_battle_with_a_collection_contender(shipped_documents, fake_model):
    arena = Arena(shipped_documents.ratings_db)
    contenders = ["default", "default+docs:shipped"]
    started = session.start_battle(arena, shipped_documents, contenders, QUESTION, "local:1", GenerationSettings())
    answer_a, answer_b = list(session.stream_battle(arena, shipped_documents, started["battle_id"], QUESTION,
                                                    GenerationSettings(max_new_tokens=16)))[-1]

    assert answer_a == answer_b == "word0 word1 word2"  # no source list gives the grounded side away
    asked = [messages[-1]["content"] for messages in fake_model.received]
    assert any("good Behaviour" in text for text in asked) and QUESTION.turns[0] in asked  # one read the sources
    assert "default+docs:shipped" not in str(arena.public_view(started["battle_id"]))
    arena.vote(started["battle_id"], "a", "local:1", started["key"])
    revealed = session.reveal_text(arena.public_view(started["battle_id"]))
    assert "default+docs:shipped" in revealed
    board = session.leaderboard_view(arena, rounds=20)
    assert sorted(row[0] for row in board["table"]) == sorted(contenders)  # two separate entries
    with pytest.raises(BadInputError, match="'default\\+docs:nope' is not a model here"):
        session.start_battle(arena, shipped_documents, ["default", "default+docs:nope"], QUESTION, "local:1",
                             GenerationSettings())


def test_automatic_metrics_run_with_a_collection(shipped_documents, fake_model):
    choice = with_documents(inference.default_choice(), "shipped")
    assert choice_from_description(describe_choice(choice)) == choice  # what the metrics job receives

    result = metrics.evaluate(choice, [QUESTION], shipped_documents, metrics.MetricsSettings(limit=1, held_out_loss=False))

    assert result["model"]["id"] == "default+docs:shipped" and result["model"]["documents"] == "shipped"
    assert result["samples"][0]["answer"] == "word0 word1 word2 "  # scored without the source list
    assert "good Behaviour" in fake_model.received[-1][-1]["content"]
    grounded = inference.open_backend(choice, shipped_documents)
    read = metrics._as_read(grounded, QUESTION, GenerationSettings())
    assert "good Behaviour" in read.turns[-1] and read.reference == QUESTION.reference  # loss given the sources
