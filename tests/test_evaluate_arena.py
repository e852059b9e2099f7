"""Arena integrity: randomised sides, hidden names, votes counted once and only as the server recorded the battle,
on the real SQLite store."""

import json
import random
import sqlite3
import threading

import pytest

from core.errors import BadInputError
from core.evaluate.arena import Arena, RateLimit, RateLimitedError, read_votes_file

PROMPT = [{"role": "user", "content": "Say hi"}]


def answered_battle(arena: Arena, models: list[str], rater: str) -> str:
    """A battle whose two answers have finished streaming, as the page shows it when voting opens."""
    battle = arena.new_battle(models, PROMPT, rater)
    arena.save_answers(battle, "Hello!", "Hi there.")
    return battle


def test_sides_are_randomised_and_balanced(workspace):
    arena = Arena(workspace.ratings_db, rate_limit=None)
    rng = random.Random(0)
    firsts = [arena.contenders_of(arena.new_battle(["base", "tuned"], PROMPT, "r", rng=rng))[0]
              for _ in range(400)]
    share = firsts.count("base") / len(firsts)
    assert 0.42 < share < 0.58  # 4 standard deviations of a fair coin over 400 draws
    assert set(arena.contenders_of(arena.new_battle(["p", "q", "s"], PROMPT, "r"))) <= {"p", "q", "s"}


def test_names_stay_hidden_until_the_vote(workspace):
    arena = Arena(workspace.ratings_db)
    battle = arena.new_battle(["secret-base", "secret-tuned"], PROMPT, "rater")
    arena.save_answers(battle, "Hello!", "Hi there.")
    before = arena.public_view(battle)
    assert "secret" not in json.dumps(before)
    assert before["answer_a"] == "Hello!" and before["winner"] is None
    arena.vote(battle, "both_bad", "rater", "key-1")
    after = arena.public_view(battle)
    assert {after["model_a"], after["model_b"]} == {"secret-base", "secret-tuned"}
    assert after["winner"] == "both_bad"


@pytest.mark.slow
def test_fifty_threads_of_a_hundred_votes_give_the_exact_count(workspace):
    arena = Arena(workspace.ratings_db, rate_limit=None, vote_log=workspace.root / "votes" / "votes.jsonl")
    errors = []

    def rater(number: int) -> None:
        try:
            for i in range(100):
                battle = answered_battle(arena, ["x", "y"], f"rater-{number}")
                arena.vote(battle, random.choice(["a", "b", "tie", "both_bad"]), f"rater-{number}", f"{number}-{i}")
        except Exception as error:  # collected so the assertion can show "database is locked" if it happens
            errors.append(error)

    threads = [threading.Thread(target=rater, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert arena.vote_count() == 5000 and len(arena.votes()) == 5000
    assert sorted(read_votes_file(arena.vote_log), key=repr) == sorted(arena.votes(), key=repr)  # no torn lines
    assert sqlite3.connect(workspace.ratings_db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_replayed_vote_is_stored_once(workspace):
    arena = Arena(workspace.ratings_db, vote_log=workspace.root / "votes.jsonl")
    battle = answered_battle(arena, ["x", "y"], "rater")
    first = arena.vote(battle, "a", "rater", "same-key")
    replay = arena.vote(battle, "a", "rater", "same-key")
    assert replay["replayed"] and (replay["winner"], replay["created"]) == (first["winner"], first["created"])
    assert arena.vote(battle, "b", "rater", "same-key")["winner"] == "a"  # the replay cannot change it
    with pytest.raises(BadInputError, match="already has a vote"):
        arena.vote(battle, "b", "rater", "another-key")
    assert arena.vote_count() == 1 and len(arena.vote_log.read_text().splitlines()) == 1


def test_a_vote_counts_only_for_the_servers_battle_its_rater_saw_finish(workspace):
    """What the arena tab calls with a button's side and the battle it holds for the session: the models
    come from the server's record, never from the client."""
    arena = Arena(workspace.ratings_db)
    battle = answered_battle(arena, ["base", "tuned"], "rater")
    arena.vote(battle, "a", "rater", "k")
    [vote] = arena.votes()
    assert (vote.model_a, vote.model_b, vote.winner) == (*arena.contenders_of(battle), "a")
    with pytest.raises(BadInputError, match="Unknown vote"):
        arena.vote(answered_battle(arena, ["base", "tuned"], "rater"), "evil", "rater", "k2")
    with pytest.raises(BadInputError, match="must finish before the vote"):
        arena.vote(arena.new_battle(["base", "tuned"], PROMPT, "rater"), "a", "rater", "k3")  # unseen answers
    with pytest.raises(BadInputError, match="does not exist"):
        arena.vote("forged", "a", "rater", "k4")
    with pytest.raises(BadInputError, match="another rater"):
        arena.vote(answered_battle(arena, ["base", "tuned"], "rater"), "a", "intruder", "k5")
    assert arena.vote_count() == 1


def test_a_burst_is_rate_limited_and_flagged(workspace):
    arena = Arena(workspace.ratings_db, rate_limit=RateLimit(max_votes=3, window_s=60))
    for i in range(3):
        arena.vote(answered_battle(arena, ["x", "y"], "bot"), "a", "bot", f"k{i}")
    with pytest.raises(RateLimitedError, match="flagged"):
        arena.vote(answered_battle(arena, ["x", "y"], "bot"), "a", "bot", "k3")
    arena.vote(answered_battle(arena, ["x", "y"], "human"), "b", "human", "h0")
    assert "bot" in arena.flagged_raters() and "human" not in arena.flagged_raters()
    assert arena.vote_count() == 4
    assert [vote.rater for vote in arena.votes()] == ["human"]  # flagged votes leave the leaderboard
    assert len(arena.votes(include_flagged=True)) == 4


def test_votes_survive_a_reopen_and_export_round_trips(workspace):
    arena = Arena(workspace.ratings_db)
    battle = arena.new_battle(["x", "y"], PROMPT, "rater")
    arena.save_answers(battle, "one", "two")
    arena.vote(battle, "tie", "rater", "k")
    reopened = Arena(workspace.ratings_db)
    assert reopened.vote_count() == 1
    exported = reopened.export_jsonl(workspace.root / "votes.jsonl")
    assert read_votes_file(exported) == reopened.votes()
    assert json.loads(exported.read_text().splitlines()[0])["answer_b"] == "two"
    csv_text = reopened.export_csv(workspace.root / "votes.csv").read_text()
    assert csv_text.splitlines()[0].startswith("battle_id,model_a,model_b,winner") and ",tie," in csv_text


def test_a_corrupt_ratings_database_is_set_aside_and_the_arena_still_opens(tmp_path):
    db = tmp_path / "ratings.sqlite"
    db.write_bytes(b"SQLite format 3\x00 but then garbage" * 10)
    arena = Arena(db)
    assert arena.set_aside is not None and arena.set_aside.read_bytes().startswith(b"SQLite format 3")
    battle = arena.new_battle(["a", "b"], [{"role": "user", "content": "hi"}], "rater")
    assert battle


def test_an_idempotency_key_reused_on_another_battle_is_refused_loudly(tmp_path):
    arena = Arena(tmp_path / "ratings.sqlite", rate_limit=None)
    first, second = (answered_battle(arena, ["base", "tuned"], "rater") for _ in range(2))
    arena.vote(first, "a", "rater", "key-1")
    with pytest.raises(BadInputError, match="already used for another battle"):
        arena.vote(second, "b", "rater", "key-1")
    assert arena.vote_count() == 1 and arena.public_view(second)["winner"] is None
    assert arena.vote(first, "a", "rater", "key-1").get("replayed")  # the same vote sent again stays a no-op
    assert arena.vote(second, "b", "rater", "key-2")["winner"] == "b"
