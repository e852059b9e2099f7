"""Bootstrap CIs for the leaderboard: all resamples in one vectorised fit vs one fit per resample.

    python bench/evaluate_bootstrap.py [--votes 5000] [--models 6] [--rounds 1000] [--repeats 3]

Both arms fit the same resampled win matrices, alternate, and report medians (the box is shared);
the script checks they agree and prints the speed-up ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.evaluate import ratings  # noqa: E402
from core.evaluate.ratings import Vote  # noqa: E402


def simulated_votes(count: int, models: int, seed: int = 0) -> list[Vote]:
    rng = np.random.default_rng(seed)
    strength = np.linspace(-1.5, 1.5, models)
    votes = []
    for _ in range(count):
        a, b = rng.choice(models, size=2, replace=False)
        p_a = 1 / (1 + np.exp(strength[b] - strength[a]))
        votes.append(Vote(f"m{a}", f"m{b}", "a" if rng.random() < p_a else "b"))
    return votes


def resampled_wins(votes: list[Vote], names: list[str], rounds: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.stack([ratings.win_matrix([votes[i] for i in rng.integers(0, len(votes), len(votes))], names)
                     for _ in range(rounds)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=5000)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    votes = simulated_votes(args.votes, args.models)
    names = ratings.models_of(votes)
    wins = resampled_wins(votes, names, args.rounds)
    loop_times, batch_times = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        looped = np.stack([ratings.fit_bradley_terry(w) for w in wins])
        loop_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        batched = ratings.fit_bradley_terry(wins)
        batch_times.append(time.perf_counter() - start)
    assert np.allclose(looped, batched, atol=1e-9)
    start = time.perf_counter()
    ratings.leaderboard(votes, rounds=args.rounds)
    whole = time.perf_counter() - start
    loop, batch = statistics.median(loop_times), statistics.median(batch_times)
    print(f"{args.votes} votes, {args.models} models, {args.rounds} resamples")
    print(f"one fit per resample: {loop:.3f} s · all resamples at once: {batch:.3f} s · ratio {loop / batch:.1f}x")
    print(f"leaderboard() end to end (fit + bootstrap + Elo + counts): {whole:.3f} s")


if __name__ == "__main__":
    main()
