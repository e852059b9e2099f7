"""'Improve from your votes': offered only from MIN_PAIRS votes on one fine-tune, then votes → pairs →
DPO from that fine-tune → an arena of the two, as background jobs."""

from __future__ import annotations

import pytest

from core import improve
from core.errors import BadInputError
from core.evaluate.arena import Arena
from core.jobs import JobRunner, State
from core.train import job, runs
from tests.preference_helpers import kestrel_pairs, vote_battles
from tests.train_helpers import FakeReporter, tiny_settings, write_version


@pytest.fixture
def sft_run(workspace, tiny_model_dir):
    run_dir = workspace.runs / "sft"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": tiny_settings(tiny_model_dir, write_version(workspace.datasets / "chats"),
                                                 max_steps=1).to_dict(), "workspace": str(workspace.root)}
    job.run(reporter)
    return run_dir


def test_the_card_waits_for_enough_pairs_on_one_fine_tune(workspace, sft_run):
    arena = Arena(workspace.ratings_db, rate_limit=None)
    assert improve.candidate(workspace) == improve.Candidate("", 0)
    vote_battles(arena, kestrel_pairs(improve.MIN_PAIRS - 1), models=("run/sft", "default"))
    battle = arena.new_battle(["run/sft", "default"], [{"role": "user", "content": "Hi"}], "local:test")
    arena.save_answers(battle, "Hello", "Hi")
    arena.vote(battle, "tie", "local:test", "tie-key")  # a tie is no pair

    found = improve.candidate(workspace)
    assert (found.run, found.pairs, found.ready) == ("sft", improve.MIN_PAIRS - 1, False)
    with pytest.raises(BadInputError, match=f"needs {improve.MIN_PAIRS} A-or-B votes on one fine-tune; there are "
                                            f"{improve.MIN_PAIRS - 1}"):
        improve.start(workspace, JobRunner(workspace))


@pytest.mark.slow
def test_votes_become_a_dpo_run_from_the_fine_tune_and_an_arena_of_the_two(workspace, sft_run):
    vote_battles(Arena(workspace.ratings_db, rate_limit=None), kestrel_pairs(improve.MIN_PAIRS),
                 models=("run/sft", "default"))
    jobs = JobRunner(workspace)

    improve.start(workspace, jobs, train_overrides={"max_steps": 2, "save_steps": 0})
    done = jobs.wait(improve.folder(workspace), timeout_s=600)

    assert done.state is State.SUCCEEDED, done.error
    result = done.result
    assert result["pairs"] == improve.MIN_PAIRS and result["start_run"] == "sft"
    settings = runs.read_config(workspace.runs / result["run"])
    assert (settings.method, settings.start_from, settings.dataset) == ("dpo", "sft", result["dataset"])
    assert result["contenders"] == ["run/sft", f"run/{result['run']}"]
    assert [e["step"] for e in done.events() if e["state"] == "done"] == list(improve.STEPS)
