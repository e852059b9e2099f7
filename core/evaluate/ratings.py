"""Ratings from votes alone: online Elo, Bradley-Terry MLE with bootstrap CIs, and pair matrices.

A vote is `(model_a, model_b, winner)` with winner "a", "b", "tie" or "both_bad". Both ratings count a
tie and a "both bad" as half a win each (as FastChat does); the two stay apart in the counts. Online Elo
is shown for familiarity but depends on vote order, which is why the Bradley-Terry fit, order-free and
with confidence intervals, is the one the leaderboard sorts by. Ratings use Elo's scale: 400 points is
10:1 odds, the mean model sits at 1000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import BadInputError

WINNERS = ("a", "b", "tie", "both_bad")
SCALE, BASE, INIT = 400.0, 10.0, 1000.0


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    winner: str
    """"a", "b", "tie" or "both_bad"."""
    rater: str = ""

    def __post_init__(self) -> None:
        if self.winner not in WINNERS:
            raise BadInputError(f"Unknown winner '{self.winner}'.", f"Use one of: {', '.join(WINNERS)}.")
        if not self.model_a or not self.model_b or self.model_a == self.model_b:
            raise BadInputError(f"A vote needs two different models, got '{self.model_a}' and '{self.model_b}'.")


def online_elo(votes: list[Vote], k: float = 4.0) -> dict[str, float]:
    """Sequential Elo in vote order (order-dependent by design; kept only for comparison)."""
    ratings: dict[str, float] = {}
    for vote in votes:
        ra, rb = ratings.setdefault(vote.model_a, INIT), ratings.setdefault(vote.model_b, INIT)
        expected_a = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        score_a = {"a": 1.0, "b": 0.0}.get(vote.winner, 0.5)
        ratings[vote.model_a] = ra + k * (score_a - expected_a)
        ratings[vote.model_b] = rb - k * (score_a - expected_a)
    return ratings


def models_of(votes: list[Vote]) -> list[str]:
    return sorted({vote.model_a for vote in votes} | {vote.model_b for vote in votes})


def win_matrix(votes: list[Vote], models: list[str]) -> np.ndarray:
    """wins[i, j] = how often i beat j, ties and "both bad" counting half to each side."""
    index = {name: i for i, name in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for vote in votes:
        a, b = index[vote.model_a], index[vote.model_b]
        score = {"a": 1.0, "b": 0.0}.get(vote.winner, 0.5)
        wins[a, b] += score
        wins[b, a] += 1 - score
    return wins


def fit_bradley_terry(wins: np.ndarray, iterations: int = 200, prior: float = 0.01) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0) by Hunter's MM updates; `wins` may be (m, m) or (B, m, m).

    Hand-written rather than a logistic regression from scikit-learn (not a dependency here): the MM
    update is four lines and vectorises over bootstrap samples. `prior` adds a sliver of a tie between
    every pair so a model that never lost still has a finite rating.
    """
    wins = np.asarray(wins, dtype=float) + prior * (1 - np.eye(wins.shape[-1]))
    games = wins + np.swapaxes(wins, -1, -2)
    total_wins = wins.sum(axis=-1)
    strength = np.ones(wins.shape[:-1])
    for _ in range(iterations):
        pair_sum = strength[..., :, None] + strength[..., None, :]
        strength = total_wins / (games / pair_sum).sum(axis=-1)
        strength /= np.exp(np.log(strength).mean(axis=-1, keepdims=True))
    return np.log(strength)


def to_rating(log_strength: np.ndarray) -> np.ndarray:
    return INIT + SCALE / math.log(BASE) * log_strength


def bootstrap_ratings(votes: list[Vote], models: list[str], rounds: int = 1000,
                      seed: int = 0) -> np.ndarray:
    """Ratings refitted on `rounds` resamples of the votes (with replacement): shape (rounds, models)."""
    index = {name: i for i, name in enumerate(models)}
    cells: dict[tuple[int, int, str], int] = {}
    for vote in votes:
        key = (index[vote.model_a], index[vote.model_b], vote.winner)
        cells[key] = cells.get(key, 0) + 1
    keys, counts = list(cells), np.array(list(cells.values()), dtype=float)
    resampled = np.random.default_rng(seed).multinomial(len(votes), counts / counts.sum(), size=rounds)
    wins = np.zeros((rounds, len(models), len(models)))
    for column, (a, b, winner) in enumerate(keys):
        score = {"a": 1.0, "b": 0.0}.get(winner, 0.5)
        wins[:, a, b] += score * resampled[:, column]
        wins[:, b, a] += (1 - score) * resampled[:, column]
    return to_rating(fit_bradley_terry(wins))


def leaderboard(votes: list[Vote], rounds: int = 1000, seed: int = 0) -> list[dict]:
    """One row per model, best first: Elo, BT rating, 95 % CI, battles and outcomes."""
    if not votes:
        return []
    models = models_of(votes)
    rating = to_rating(fit_bradley_terry(win_matrix(votes, models)))
    low, high = np.percentile(bootstrap_ratings(votes, models, rounds, seed), [2.5, 97.5], axis=0)
    elo = online_elo(votes)
    rows = []
    for i, name in enumerate(models):
        mine = [v for v in votes if name in (v.model_a, v.model_b)]
        won = sum(1 for v in mine if (v.winner == "a") == (v.model_a == name) and v.winner in ("a", "b"))
        ties = sum(1 for v in mine if v.winner == "tie")
        both_bad = sum(1 for v in mine if v.winner == "both_bad")
        rows.append({"model": name, "elo": round(elo[name], 1), "bt": round(float(rating[i]), 1),
                     "ci_low": round(float(low[i]), 1), "ci_high": round(float(high[i]), 1),
                     "battles": len(mine), "wins": won, "losses": len(mine) - won - ties - both_bad,
                     "ties": ties, "both_bad": both_bad})
    return sorted(rows, key=lambda row: row["bt"], reverse=True)


def pair_matrices(votes: list[Vote]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(models, win rate of row over column among decisive votes (nan if none), battle counts)."""
    models = models_of(votes)
    index = {name: i for i, name in enumerate(models)}
    decisive = np.zeros((len(models), len(models)))
    won = np.zeros_like(decisive)
    battles = np.zeros_like(decisive, dtype=int)
    for vote in votes:
        a, b = index[vote.model_a], index[vote.model_b]
        battles[a, b] += 1
        battles[b, a] += 1
        if vote.winner in ("a", "b"):
            decisive[a, b] += 1
            decisive[b, a] += 1
            won[(a, b) if vote.winner == "a" else (b, a)] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return models, np.where(decisive > 0, won / decisive, np.nan), battles


def votes_to_separate(rows: list[dict], total_votes: int) -> list[dict]:
    """For each neighbouring pair whose CIs overlap: about how many more votes would separate them.

    A rough guide: CI half-widths shrink like 1/sqrt(votes), so the intervals stop overlapping once
    the votes grow by ((half_a + half_b) / gap)^2. Equal ratings can never be separated (None).
    """
    advice = []
    for upper, lower in zip(rows, rows[1:]):
        if upper["ci_low"] > lower["ci_high"]:
            continue
        gap = upper["bt"] - lower["bt"]
        widths = (upper["ci_high"] - upper["ci_low"] + lower["ci_high"] - lower["ci_low"]) / 2
        more = None if gap <= 0 else max(1, math.ceil(total_votes * ((widths / gap) ** 2 - 1)))
        advice.append({"better": upper["model"], "worse": lower["model"], "more_votes": more})
    return advice


def separation_text(advice: list[dict]) -> list[str]:
    return [f"about {item['more_votes']} more votes needed to separate {item['better']} and {item['worse']}"
            if item["more_votes"] else f"{item['better']} and {item['worse']} look equal so far"
            for item in advice]
