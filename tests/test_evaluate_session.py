"""A whole battle as the tab drives it, with fake backends: blind, streamed, voted, revealed, ranked."""

import json

import pytest

from core.errors import BadInputError
from core.evaluate import session
from core.evaluate.arena import Arena
from core.evaluate.prompts import PromptItem
from core.inference import GenerationSettings, ModelChoice


class Echo:
    def __init__(self, name):
        self.name = name

    def stream(self, messages, settings):
        yield from (f"{self.name} ", f"answers {messages[-1]['content']}")


@pytest.fixture
def two_fakes(monkeypatch):
    choices = {"base": ModelChoice(kind="gguf", label="base"), "tuned": ModelChoice(kind="gguf", label="tuned")}
    monkeypatch.setattr("core.evaluate.contenders.list_contenders", lambda workspace: choices)
    monkeypatch.setattr("core.evaluate.session.list_contenders", lambda workspace: choices)
    monkeypatch.setattr("core.inference.open_backend", lambda choice, workspace, **kw: Echo(choice.label))
    return choices


def test_a_battle_streams_both_sides_then_reveals_after_the_vote(workspace, two_fakes):
    arena = Arena(workspace.ratings_db)
    item = PromptItem("typed", ("Hi?", "And?"))
    started = session.start_battle(arena, workspace, ["base", "tuned"], item, "local:1", GenerationSettings())
    assert set(started) == {"battle_id", "key", "item"}  # nothing that names a model
    frames = list(session.stream_battle(arena, workspace, started["battle_id"], item, GenerationSettings()))
    assert len(frames) > 2 and all(len(frame) == 2 for frame in frames)
    model_a, model_b = arena.contenders_of(started["battle_id"])
    final_a, final_b = frames[-1]
    assert final_a == f"**Turn 1:** {model_a} answers Hi?\n\n**Turn 2:** {model_a} answers And?"
    assert final_b.endswith(f"{model_b} answers And?")
    assert "model_a" not in arena.public_view(started["battle_id"])
    arena.vote(started["battle_id"], "b", "local:1", started["key"])
    assert session.reveal_text(arena.public_view(started["battle_id"])) == (
        f"**B wins.** A was **{model_a}**, B was **{model_b}**.")
    board = session.leaderboard_view(arena, rounds=50)
    assert board["votes"] == 1 and board["table"][0][0] == model_b and board["battles"][0][1:] == [0, 1]


def test_unknown_contender_and_one_model_are_refused(workspace, two_fakes):
    arena = Arena(workspace.ratings_db)
    with pytest.raises(BadInputError, match="not a model here"):
        session.start_battle(arena, workspace, ["base", "ghost"], PromptItem("t", ("x",)), "r", GenerationSettings())
    with pytest.raises(BadInputError, match="two different models"):
        session.start_battle(arena, workspace, ["base"], PromptItem("t", ("x",)), "r", GenerationSettings())


def test_on_a_space_only_logged_in_raters_vote(monkeypatch):
    assert session.rater_id(None, "abc") == "local:abc"
    monkeypatch.setenv("SPACE_ID", "someone/chatsmith")
    assert session.rater_id("alice", "abc") == "hf:alice"
    with pytest.raises(BadInputError, match="logged-in"):
        session.rater_id(None, "abc")


def test_prompt_choice_prefers_typed_then_upload_then_set(workspace, tmp_path):
    assert session.choose_prompt(workspace, "  typed  ", "shipped", None).turns == ("typed",)
    upload = tmp_path / "q.jsonl"
    upload.write_text('{"prompt": "from the file"}\n')
    assert session.choose_prompt(workspace, "", "shipped", str(upload)).turns == ("from the file",)
    assert session.choose_prompt(workspace, "", "shipped", None).id.startswith(("en-", "zh-"))
    assert session.prompt_sources(workspace) == ["shipped"]


def test_a_failing_side_does_not_break_the_blind(workspace, monkeypatch, two_fakes):
    class Broken:
        def stream(self, messages, settings):
            raise RuntimeError("/models/secret-tuned.gguf is corrupt")
            yield

    monkeypatch.setattr("core.inference.open_backend",
                        lambda choice, workspace, **kw: Broken() if choice.label == "tuned" else Echo("x"))
    arena = Arena(workspace.ratings_db)
    item = PromptItem("typed", ("Hi?",))
    started = session.start_battle(arena, workspace, ["base", "tuned"], item, "r", GenerationSettings())
    final = list(session.stream_battle(arena, workspace, started["battle_id"], item, GenerationSettings()))[-1]
    broken_side = arena.contenders_of(started["battle_id"]).index("tuned")
    assert final[broken_side] == "\n\n❌ This model failed to answer (RuntimeError)."
    assert final[1 - broken_side] == "x answers Hi?"
    assert "secret" not in json.dumps(arena.public_view(started["battle_id"]))
