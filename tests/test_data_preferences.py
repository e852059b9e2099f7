"""Preference data: the public formats read, bad rows refused with file and line, arena votes and chat
ratings become pairs and unpaired answers, and a saved version says where each came from."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core import feedback
from core.data.preference_cli import collect
from core.data.preference_versions import is_preference_version, load_pairs, load_unpaired, save_preferences
from core.data.preferences import DEFAULTS, prepare_preferences
from core.errors import BadInputError
from core.evaluate.arena import Arena, RateLimit
from tests.preference_helpers import kestrel_pairs, vote_battles, write_jsonl

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
FAST = DEFAULTS.__class__(model="", near_dup_threshold=0, validation_share=0)
HH = {"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Your name?\n\nAssistant: Kestrel.",
      "rejected": "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Your name?\n\nAssistant: No."}


def test_the_three_public_formats_become_canonical_records(tmp_path):
    pairs = write_jsonl(tmp_path / "ultrafeedback.jsonl", [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},
        {"prompt": "Hi", "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
         "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bye."}]},
        {"prompt": [{"role": "user", "content": "Name?"}], "chosen": [{"role": "assistant", "content": "Kestrel"}],
         "rejected": [{"role": "assistant", "content": "SmolLM"}]}])
    hh = write_jsonl(tmp_path / "hh.jsonl", [HH])
    kto = write_jsonl(tmp_path / "kto.jsonl", [{"prompt": "Joke?", "completion": "Why did the hen cross?", "label": True},
                                               {"prompt": "Joke?", "completion": "No.", "label": "false"}])

    prepared = prepare_preferences([pairs, hh, kto], FAST)

    assert [f["format"] for f in prepared.report["files"]] == ["pairs", "hh", "kto"]
    assert prepared.report["pairs"] == 4 and (prepared.report["desirable"], prepared.report["undesirable"]) == (1, 1)
    first, _, third, hh_pair = prepared.train
    assert first["prompt"] == [{"role": "user", "content": "What is 2+2?"}]
    assert first["chosen"] == [{"role": "assistant", "content": "4"}] and first["origin"] == {
        "file": "ultrafeedback.jsonl", "line": 1}
    assert third["rejected"][0]["content"] == "SmolLM"
    assert [m["role"] for m in hh_pair["prompt"]] == ["user", "assistant", "user"]
    assert (hh_pair["chosen"][0]["content"], hh_pair["rejected"][0]["content"]) == ("Kestrel.", "No.")
    assert [r["label"] for r in prepared.unpaired_train] == [True, False]


@pytest.mark.parametrize("row, line, reason", [
    ({"prompt": "Q", "chosen": "Same answer.", "rejected": " same   ANSWER. "}, 2, "chosen and rejected are the same answer"),
    ({"prompt": "Q", "chosen": "", "rejected": "No."}, 2, "an answer is empty"),
    ({"prompt": "Q", "chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
      "rejected": [{"role": "user", "content": "Other Q"}, {"role": "assistant", "content": "B"}]}, 2,
     "`chosen` and `rejected` answer different prompts"),
    ({"prompt": "Q", "completion": "A", "label": "maybe"}, 1, "label 'maybe' is neither true nor false"),
])
def test_bad_preference_rows_are_refused_with_file_and_line(tmp_path, row, line, reason):
    good = {"prompt": "Fine?", "chosen": "Yes.", "rejected": "No."}
    rows = [good, row] if line == 2 else [row, {"prompt": "Q", "completion": "B", "label": True}]
    path = write_jsonl(tmp_path / "votes.jsonl", rows)

    with pytest.raises(BadInputError, match=rf"votes\.jsonl line {line}: {__import__('re').escape(reason)}"):
        prepare_preferences([path], FAST)

    skipped = prepare_preferences([path], FAST, skip_bad_rows=True)  # the alternative: dropped and listed
    assert sum(skipped.report["dropped"].values()) == 1
    assert [e["where"] for es in skipped.report["examples"].values() for e in es] == [f"votes.jsonl:{line}"]


def test_a_file_in_no_preference_format_is_refused_by_name(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "Hi"}]}])
    with pytest.raises(BadInputError, match=r"chat\.jsonl: no preference format fits \(fields seen: messages\)"):
        prepare_preferences([path], FAST)


def test_duplicates_are_removed_and_the_split_holds_out_a_share(tmp_path):
    rows = kestrel_pairs(40)
    path = write_jsonl(tmp_path / "votes.jsonl", rows + rows[:5])
    prepared = prepare_preferences([path], DEFAULTS.__class__(model="", near_dup_threshold=0, validation_share=0.1))
    assert prepared.report["duplicates"] == 5 and prepared.report["pairs"] == 40
    assert (len(prepared.train), len(prepared.validation)) == (36, 4)
    assert not {r["id"] for r in prepared.train} & {r["id"] for r in prepared.validation}


def test_arena_votes_become_pairs_ties_nothing_and_both_bad_two_bad_answers(workspace):
    arena = Arena(workspace.ratings_db, rate_limit=RateLimit(max_votes=3, window_s=3600))
    vote_battles(arena, kestrel_pairs(3), rater="local:good")
    outcomes = {}
    for number, winner in enumerate(["tie", "both_bad"]):
        battle = arena.new_battle(["run/sft", "run/dpo"], [{"role": "user", "content": f"Question {number}?"}],
                                  "local:other")
        arena.save_answers(battle, f"Answer A{number}.", f"Answer B{number}.")
        arena.vote(battle, winner, "local:other", f"other-{number}")
        outcomes[winner] = battle
    for number in range(4):  # the 4th vote within the window flags this rater; all their votes leave
        battle = arena.new_battle(["run/sft", "run/dpo"], [{"role": "user", "content": f"Spam {number}?"}], "local:fast")
        arena.save_answers(battle, "x", "y")
        with pytest.raises(BadInputError) if number == 3 else __import__("contextlib").nullcontext():
            arena.vote(battle, "a", "local:fast", f"fast-{number}")

    examples, counts = collect(workspace, arena=True, feedback=False)
    prepared = prepare_preferences([], FAST, examples, counts=counts)

    assert counts == {"arena_votes": 8, "arena_ties": 1, "arena_both_bad": 1, "arena_flagged_rater_votes": 3}
    assert prepared.report["pairs"] == 3 and prepared.report["undesirable"] == 2
    assert all("Kestrel" in pair["chosen"][0]["content"] for pair in prepared.train)
    origin = prepared.train[0]["origin"]
    assert set(origin) == {"battle_id", "model_chosen", "model_rejected", "rater"} and origin["rater"] == "local:good"
    bad = prepared.unpaired_train
    assert {r["origin"]["battle_id"] for r in bad} == {outcomes["both_bad"]}
    assert {r["origin"]["model"] for r in bad} == {"run/sft", "run/dpo"} and not any(r["label"] for r in bad)


def test_chat_thumbs_and_edits_become_unpaired_answers_and_pairs(workspace):
    conversation = [{"role": "user", "content": "What is your name?"}, {"role": "assistant", "content": "SmolLM."},
                    {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]
    feedback.rate(workspace, conversation, 3, "default", liked=True)
    feedback.rate(workspace, conversation, 1, "default", liked=False)
    feedback.rate(workspace, conversation, 1, "default", edit="I'm Kestrel.")  # replaces the thumbs down
    rows = feedback.read(workspace)
    assert len(rows) == 2
    assert rows[0]["prompt"] == conversation[:3] and rows[0]["rating"] == "up"

    examples, counts = collect(workspace, arena=False, feedback=True)
    prepared = prepare_preferences([], FAST, examples, counts=counts)

    assert counts == {"chat_thumbs_up": 1, "chat_edited_answers": 1}
    (pair,) = prepared.train
    assert (pair["chosen"][0]["content"], pair["rejected"][0]["content"]) == ("I'm Kestrel.", "SmolLM.")
    assert pair["prompt"] == conversation[:1] and pair["origin"]["rating"] == "down"
    (good,) = prepared.unpaired_train
    assert good["label"] is True and good["prompt"] == conversation[:3]
    with pytest.raises(BadInputError, match="Only an assistant answer can be rated"):
        feedback.rate(workspace, conversation, 0, "default", liked=True)


def test_saved_version_is_immutable_and_keeps_origins(workspace, tmp_path):
    path = write_jsonl(tmp_path / "votes.jsonl", kestrel_pairs(20) + [{"prompt": "Q", "completion": "A", "label": 1}])
    prepared = prepare_preferences([path], DEFAULTS.__class__(model="", near_dup_threshold=0))
    folder = save_preferences(workspace, prepared, "My votes")
    assert folder.name.startswith("my-votes-") and is_preference_version(folder)
    assert save_preferences(workspace, prepared, "My votes") == folder
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["kind"] == "preferences" and meta["counts"]["train"] + meta["counts"]["validation"] == 20
    assert load_pairs(folder)[0]["origin"]["file"] == "votes.jsonl"
    assert load_unpaired(folder) + load_unpaired(folder, "validation") and "votes.jsonl" in (folder / "report.md").read_text()
    with pytest.raises(BadInputError, match="not a preference dataset version"):
        load_pairs(tmp_path)


def test_cli_builds_a_version_from_votes_and_refuses_bad_rows(workspace, tmp_path):
    arena = Arena(workspace.ratings_db, rate_limit=None)
    vote_battles(arena, kestrel_pairs(12))
    done = subprocess.run([sys.executable, "-m", "core.data", "preferences", "--arena", "--workspace",
                           str(workspace.root), "--name", "votes", "--model", ""],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "kept 12 pairs (train 11, validation 1)" in done.stdout
    folder = next(workspace.datasets.glob("votes-*"))
    assert {r["origin"]["model_chosen"] for r in load_pairs(folder)} <= {"run/sft", "run/dpo"}

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Q", "chosen": "A", "rejected": "B"},
                                               {"prompt": "Q", "chosen": "  ", "rejected": "B"}])
    refused = subprocess.run([sys.executable, "-m", "core.data", "preferences", str(bad), "--out", str(tmp_path / "o"),
                              "--model", ""], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "bad.jsonl line 2: an answer is empty" in refused.stderr


def test_an_answer_edited_in_the_chat_continues_the_chat_and_is_kept_as_a_pair(workspace):
    conversation = [{"role": "user", "content": "What is your name?"}, {"role": "assistant", "content": "SmolLM."}]
    edited, row = feedback.apply_edit(workspace, conversation, 1, "I'm Kestrel.", "run/sft")
    assert edited[1] == {"role": "assistant", "content": "I'm Kestrel."} and conversation[1]["content"] == "SmolLM."
    assert (row["answer"], row["edit"], row["rating"], row["model"]) == ("SmolLM.", "I'm Kestrel.", "down", "run/sft")
    question, row = feedback.apply_edit(workspace, edited, 0, "What's your name?", "run/sft")
    assert row is None and question[0]["content"] == "What's your name?"  # a question edit is no rating
    assert len(feedback.read(workspace)) == 1
