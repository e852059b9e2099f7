"""Verdicts a user can trust: style-controlled ratings and a plain-words verdict for every pair of models.

Contract: `style_controlled(records)` fits Bradley-Terry with style covariates on `Arena.records()` and
returns ratings on the leaderboard's Elo scale with bootstrap 95 % CIs, plus the style coefficients;
`pair_verdicts(votes)` returns one verdict per pair of models that met, in words; `more_votes_needed`
is the estimate behind "not yet separable: about N more votes needed". Pure numpy, no gradio.

* **Style control**, the way Chatbot Arena does it: each battle's outcome is a logistic function of the
  two models' strengths plus coefficients times the answers' style differences (relative length, markdown
  headers, bold spans, list items), fitted together. The strengths are then the ratings with style held
  equal, so a model that wins only by writing longer answers drops back. Hand-written Newton steps rather
  than scikit-learn's logistic regression (not a dependency here); it is a dozen lines and vectorises.
* **Verdicts** use the decisive votes between two models (a tie or "both bad" prefers neither): the win
  rate with a Wilson 95 % interval. When the interval holds 50 %, the pair is not yet separable.
* **Votes needed** is honest by construction: with a uniform prior on the true win rate, the posterior
  after the votes so far predicts the outcome of N more votes, and N is the smallest count that separates
  the pair with probability `TARGET` (80 %). Under that prior the advice comes true 80 % of the time, and
  more often for the differences fine-tunes usually make; `tests/test_evaluate_verdicts.py` checks both by
  simulation. A pair that looks equal may never separate, and the advice then says so.
"""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np

from core.evaluate.ratings import SCALE, BASE, INIT, Vote, models_of

Z95 = NormalDist().inv_cdf(0.975)
TARGET = 0.8
"""The chance of separating a pair that "about N more votes" promises."""
MAX_MORE = 100_000
"""Beyond this many more votes the advice says the two may be equal instead of a number."""
STYLE_FEATURES = ("length", "headers", "bold", "lists")
HEADER = re.compile(r"^#{1,6}\s", re.MULTILINE)
BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s", re.MULTILINE)


def style_of(answer: str) -> np.ndarray:
    """The style counts of one answer: characters, markdown headers, bold spans, list items."""
    return np.array([len(answer), len(HEADER.findall(answer)), len(BOLD.findall(answer)),
                     len(LIST_ITEM.findall(answer))], dtype=float)


def style_controlled(records: list[dict], rounds: int = 200, seed: int = 0) -> dict:
    """{"rows": [{"model", "rating", "ci_low", "ci_high"}...] best first, "coefficients": {feature: Elo points
    per standard deviation of that style difference}}; {} without votes."""
    records = [r for r in records if not r.get("flagged")]
    if not records:
        return {}
    models = models_of([Vote(r["model_a"], r["model_b"], r["winner"]) for r in records])
    design, outcome = _design(records, models)
    theta = _fit(design, outcome, len(models))
    rng = np.random.default_rng(seed)
    samples = np.array([_fit(design[i], outcome[i], len(models))
                        for i in (rng.integers(0, len(records), len(records)) for _ in range(rounds))])
    low, high = np.percentile(_to_rating(samples[:, :len(models)]), [2.5, 97.5], axis=0)
    rating = _to_rating(theta[:len(models)])
    rows = [{"model": str(name), "rating": round(float(rating[i]), 1), "ci_low": round(float(low[i]), 1),
             "ci_high": round(float(high[i]), 1)} for i, name in enumerate(models)]
    points = SCALE / math.log(BASE)
    return {"rows": sorted(rows, key=lambda row: row["rating"], reverse=True),
            "coefficients": {name: round(float(theta[len(models) + k]) * points, 1)
                             for k, name in enumerate(STYLE_FEATURES)}}


def _design(records: list[dict], models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    index = {name: i for i, name in enumerate(models)}
    strengths = np.zeros((len(records), len(models)))
    styles = np.zeros((len(records), len(STYLE_FEATURES)))
    outcome = np.zeros(len(records))
    for row, record in enumerate(records):
        strengths[row, index[record["model_a"]]] += 1
        strengths[row, index[record["model_b"]]] -= 1
        a, b = style_of(record.get("answer_a") or ""), style_of(record.get("answer_b") or "")
        styles[row] = (a - b) / (a + b + 1)  # relative differences, as Chatbot Arena normalises them
        outcome[row] = {"a": 1.0, "b": 0.0}.get(record["winner"], 0.5)
    spread = styles.std(axis=0)
    styles = np.divide(styles, spread, out=np.zeros_like(styles), where=spread > 0)  # per standard deviation
    return np.hstack([strengths, styles]), outcome


def _fit(design: np.ndarray, outcome: np.ndarray, n_models: int, iterations: int = 30,
         ridge: float = 1e-3) -> np.ndarray:
    """Logistic regression by Newton's method; a small ridge keeps a model that never lost finite."""
    theta = np.zeros(design.shape[1])
    penalty = ridge * np.eye(design.shape[1])
    for _ in range(iterations):
        chance = 1 / (1 + np.exp(-design @ theta))
        gradient = design.T @ (outcome - chance) - penalty @ theta
        hessian = (design * (chance * (1 - chance))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        theta += step
        if np.abs(step).max() < 1e-8:
            break
    theta[:n_models] -= theta[:n_models].mean()
    return theta


def _to_rating(log_strength: np.ndarray) -> np.ndarray:
    return INIT + SCALE / math.log(BASE) * log_strength


# --- verdicts per pair --------------------------------------------------------------------------------


def wilson(wins: float, n: float) -> tuple[float, float]:
    """The Wilson score 95 % interval of a win rate (better than p ± 1.96·se at small n and near 0 or 1)."""
    wins, n = np.asarray(wins, dtype=float), np.asarray(n, dtype=float)
    rate = wins / n
    denominator = 1 + Z95 ** 2 / n
    centre = (rate + Z95 ** 2 / (2 * n)) / denominator
    half = Z95 * np.sqrt(rate * (1 - rate) / n + Z95 ** 2 / (4 * n * n)) / denominator
    return centre - half, centre + half


def separated(wins, n) -> np.ndarray:
    low, high = wilson(wins, n)
    return (low > 0.5) | (high < 0.5)


def more_votes_needed(wins: int, decisive: int, target: float = TARGET, draws: int = 4000,
                      seed: int = 0) -> int | None:
    """Decisive votes still needed to separate the pair with probability `target`, or None if more than
    `MAX_MORE` (the two may be equal). Posterior predictive under a uniform prior, by simulation."""
    rng = np.random.default_rng(seed)
    rates = rng.beta(wins + 1, decisive - wins + 1, size=draws)
    more = 1
    while more <= MAX_MORE:
        if separated(wins + rng.binomial(more, rates), decisive + more).mean() >= target:
            return more
        more = max(more + 1, int(more * 1.15))
    return None


def pair_verdicts(votes: list[Vote]) -> list[dict]:
    """One verdict per pair of models with votes between them, the clearest first."""
    tally: dict[tuple[str, str], list[int]] = {}
    for vote in votes:
        pair = tuple(sorted((vote.model_a, vote.model_b)))
        counts = tally.setdefault(pair, [0, 0, 0])  # wins of pair[0], wins of pair[1], neither
        if vote.winner in ("a", "b"):
            winner = vote.model_a if vote.winner == "a" else vote.model_b
            counts[pair.index(winner)] += 1
        else:
            counts[2] += 1
    verdicts = [_verdict(pair, *counts) for pair, counts in tally.items()]
    return sorted(verdicts, key=lambda v: (not v["separated"], -v["votes"]))


def _verdict(pair: tuple[str, str], first: int, second: int, neither: int) -> dict:
    better, worse, wins = (pair[0], pair[1], first) if first >= second else (pair[1], pair[0], second)
    decisive, votes = first + second, first + second + neither
    verdict = {"better": better, "worse": worse, "votes": votes, "decisive": decisive, "separated": False,
               "win_rate": wins / decisive if decisive else None, "ci": None, "more_votes": None}
    ties = f", {neither} ties or both bad left out" if neither else ""
    if not decisive:
        verdict["text"] = f"{better} vs {worse}: no decisive vote yet ({votes} ties or both bad)"
        return verdict
    low, high = (float(x) for x in wilson(wins, decisive))
    verdict.update(ci=(low, high), separated=bool(low > 0.5))
    figures = (f"{100 * wins / decisive:.0f} % win rate, 95 % CI {100 * low:.0f}–{100 * high:.0f} %, "
               f"{decisive} votes{ties}")
    if verdict["separated"]:
        verdict["text"] = f"{better} beats {worse}: {figures}"
        return verdict
    more = more_votes_needed(wins, decisive)
    if more is not None and neither:
        more = math.ceil(more * votes / decisive)  # ties and "both bad" will keep coming at their rate
    verdict["more_votes"] = more
    advice = (f"about {more:,} more votes needed" if more is not None else
              f"they may be equal: even {MAX_MORE:,} more votes would probably not separate them")
    verdict["text"] = f"{better} vs {worse} not yet separable: {advice} ({better} {figures})"
    return verdict
