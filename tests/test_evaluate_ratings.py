"""Ratings: Bradley-Terry recovers known strengths with honest CIs; Elo, matrices and advice behave."""

import json
import subprocess
import sys

import numpy as np

from core.evaluate import ratings
from core.evaluate.ratings import Vote

TRUE = {"strong": 1200.0, "good": 1080.0, "fair": 960.0, "weak": 760.0}  # mean 1000, Elo scale


def simulate(n: int, rng: np.random.Generator, tie_rate: float = 0.1) -> list[Vote]:
    names = list(TRUE)
    votes = []
    for _ in range(n):
        a, b = rng.choice(len(names), size=2, replace=False)
        if rng.random() < tie_rate:
            votes.append(Vote(names[a], names[b], rng.choice(["tie", "both_bad"])))
            continue
        p_a = 1 / (1 + 10 ** ((TRUE[names[b]] - TRUE[names[a]]) / 400))
        votes.append(Vote(names[a], names[b], "a" if rng.random() < p_a else "b"))
    return votes


def test_bradley_terry_recovers_the_order_of_known_strengths():
    with_ties = ratings.leaderboard(simulate(3000, np.random.default_rng(1)), rounds=200)
    assert [row["model"] for row in with_ties] == ["strong", "good", "fair", "weak"]
    rows = ratings.leaderboard(simulate(3000, np.random.default_rng(2), tie_rate=0.0), rounds=200)
    for row in rows:
        assert abs(row["bt"] - TRUE[row["model"]]) < 40
        assert row["ci_low"] < row["bt"] < row["ci_high"]


def test_bootstrap_95_percent_intervals_cover_the_truth_at_about_that_rate():
    # Ties are left out here: they pull BT ratings together, so the "truth" would no longer be TRUE.
    rng = np.random.default_rng(7)
    covered = total = 0
    for trial in range(40):
        for row in ratings.leaderboard(simulate(400, rng, tie_rate=0.0), rounds=300, seed=trial):
            covered += row["ci_low"] <= TRUE[row["model"]] <= row["ci_high"]
            total += 1
    assert 0.85 <= covered / total <= 1.0, covered / total


def test_counts_keep_tie_and_both_bad_apart():
    votes = [Vote("x", "y", "a"), Vote("x", "y", "tie"), Vote("y", "x", "both_bad"), Vote("y", "x", "a")]
    rows = {row["model"]: row for row in ratings.leaderboard(votes, rounds=50)}
    assert (rows["x"]["wins"], rows["x"]["losses"], rows["x"]["ties"], rows["x"]["both_bad"]) == (1, 1, 1, 1)
    assert rows["x"]["battles"] == rows["y"]["battles"] == 4


def test_online_elo_depends_on_order_but_bradley_terry_does_not():
    votes = [Vote("x", "y", "a")] * 10 + [Vote("x", "y", "b")] * 10
    assert ratings.online_elo(votes)["x"] != ratings.online_elo(votes[::-1])["x"]
    forward = ratings.fit_bradley_terry(ratings.win_matrix(votes, ["x", "y"]))
    backward = ratings.fit_bradley_terry(ratings.win_matrix(votes[::-1], ["x", "y"]))
    assert np.allclose(forward, backward) and np.allclose(forward, 0, atol=1e-6)


def test_win_rate_and_battle_count_matrices():
    votes = [Vote("x", "y", "a"), Vote("x", "y", "a"), Vote("y", "x", "a"), Vote("x", "y", "tie")]
    models, win_rate, battles = ratings.pair_matrices(votes)
    assert models == ["x", "y"]
    assert win_rate[0, 1] == 2 / 3 and win_rate[1, 0] == 1 / 3 and np.isnan(win_rate[0, 0])
    assert battles[0, 1] == battles[1, 0] == 4


def test_more_votes_needed_shrinks_as_votes_grow():
    rng = np.random.default_rng(3)
    votes = [Vote("good", "fair", "a" if rng.random() < 0.6 else "b") for _ in range(400)]
    few = ratings.votes_to_separate(ratings.leaderboard(votes[:40], rounds=300), 40)
    assert few and few[0]["better"] == "good" and few[0]["more_votes"] > 0
    text = ratings.separation_text(few)[0]
    assert text.startswith("about ") and "more votes needed to separate good and fair" in text


def test_leaderboard_command_prints_json(tmp_path):
    path = tmp_path / "votes.jsonl"
    lines = [{"model_a": "x", "model_b": "y", "winner": "a", "rater": "r"}] * 6 + [
        {"model_a": "y", "model_b": "x", "winner": "both_bad"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = subprocess.run([sys.executable, "-m", "core.evaluate", "leaderboard", "--votes", str(path)],
                            capture_output=True, text=True, check=True).stdout
    board = json.loads(output)
    assert [row["model"] for row in board["models"]] == ["x", "y"]
    assert {"elo", "bt", "ci_low", "ci_high", "battles"} <= set(board["models"][0])
    assert board["models"][0]["battles"] == 7
    usage = subprocess.run([sys.executable, "-m", "core.evaluate", "--help"], capture_output=True, text=True, check=True)
    assert all(command in usage.stdout for command in ("leaderboard", "metrics", "report", "writeup"))


def test_the_leaderboard_says_when_a_model_has_too_few_votes_for_an_interval(workspace):
    from core.evaluate.arena import Arena
    from core.evaluate.session import leaderboard_view, votes_text

    arena = Arena(workspace.ratings_db)
    battle = arena.new_battle(["base", "tuned"], {"messages": [{"role": "user", "content": "Hi"}]}, "r1")
    arena.save_answers(battle, "Hello!", "Hi there.")
    arena.vote(battle, "a", "r1", "k-1")
    view = leaderboard_view(arena, rounds=50)
    assert votes_text(view["votes"]) == "1 vote" and votes_text(2) == "2 votes"
    # One vote resamples to itself: an interval of width 0 would look certain, so none is shown.
    assert [row[2] for row in view["table"]] == ["not enough votes (1 of 5 battles)"] * 2
    for number in range(2, 6):
        battle = arena.new_battle(["base", "tuned"], {"messages": [{"role": "user", "content": "Hi"}]}, "r1")
        arena.save_answers(battle, "Hello!", "Hi there.")
        arena.vote(battle, "a" if number % 2 else "b", "r1", f"k-{number}")
    assert all(" – " in row[2] for row in leaderboard_view(arena, rounds=50)["table"])
