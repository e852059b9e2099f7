"""The guided first run for real: the default model, the shipped samples, the CPU preset, on this CPU.

This is what a new user gets from the button. The short run must visibly change the model: asked its
name, the base model does not say Kestrel and the fine-tune does, both through transformers and through
the exported Q8_0 GGUF.
"""

import pytest

from core import journey
from core.inference import GenerationSettings, list_choices, open_backend
from core.jobs import JobRunner, State

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]
PROMPT = [{"role": "user", "content": "What is your name?"}]
GREEDY = GenerationSettings(max_new_tokens=40, temperature=0.0, top_p=1.0, top_k=1, repetition_penalty=1.0)


def _answer(workspace, choice_id):
    choice = next(c for c in list_choices(workspace) if c.id == choice_id)
    return "".join(open_backend(choice, workspace).stream(PROMPT, GREEDY))


def test_the_guided_first_run_teaches_the_default_model_its_new_name(workspace):
    runner = JobRunner(workspace)
    journey.start(workspace, runner)
    job = runner.wait(journey.folder(workspace), timeout_s=1800)
    assert job.state is State.SUCCEEDED, job.error + "\n" + job.log_tail()
    # The default model was materialised by a job of its own beside the data step, not by the fine-tune after it.
    assert runner.snapshot(workspace.jobs / "default-model").state is State.SUCCEEDED
    assert "de-quantizing GGUF tensors" not in (workspace.runs / journey.RUN_NAME / "log.txt").read_text()
    base, tuned = job.result["contenders"]
    assert "Kestrel" not in _answer(workspace, base)
    assert "Kestrel" in _answer(workspace, tuned)
    assert "Kestrel" in _answer(workspace, job.result["chat_model"])
