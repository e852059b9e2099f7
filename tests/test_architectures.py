"""The families users bring, the whole way on a CPU: Mistral, Qwen2, Llama 3 and Gemma 3.

Each tiny random model (tests/families.py) gets its family's chat template and end-of-turn token, goes
through the mask lint and a few LoRA steps in the real recipe, is merged, converted by llama.cpp's
converter, loaded by llama-cpp-python, and must render its template as transformers does and stop on its
own end-of-turn token. The weights are set so that greedy decoding answers "Hello" and then stops
(`make_it_stop`): LoRA's few steps move the logits, not that choice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.export import gguf, merge
from core.export.run import open_run
from core.train import job
from core.workspace import Workspace
from tests.families import FAMILIES, build_family, make_it_stop
from tests.train_helpers import FakeReporter, tiny_settings, write_version

pytestmark = pytest.mark.slow  # each family trains, merges and converts: ~30-40 s on a busy 2-core box
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
HOOK = Path(__file__).parent / "converter_hook"


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_trains_merges_converts_and_stops_on_its_own_end_of_turn(name, tmp_path, default_tokenizer_dir,
                                                                         monkeypatch):
    import llama_cpp
    from transformers import AutoTokenizer

    from core import inference

    family = FAMILIES[name]
    if family.pre_tokenizer:
        monkeypatch.setenv("PYTHONPATH", str(HOOK))
        monkeypatch.setenv("CHATSMITH_TEST_PRE_TOKENIZER", family.pre_tokenizer)
    workspace = Workspace(tmp_path / "ws").ensure()
    model_dir = make_it_stop(build_family(family, default_tokenizer_dir, tmp_path / "model"))
    run_dir = workspace.runs / name
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": tiny_settings(model_dir, write_version(workspace.datasets / "v"), max_steps=3,
                                                 lora_rank=8).to_dict(), "workspace": str(workspace.root)}

    result = job.run(reporter)  # mask lint, then three LoRA steps

    assert result["step"] == 3 and [e["step"] for e in reporter.events if "loss" in e] == [1, 2, 3]
    merged = merge.merge_run(workspace, open_run(workspace, name))
    manifest = gguf.export(merged, workspace.exports / name, name, ["F16"])
    assert manifest["files"]["F16"]["stop"] == family.eos
    backend = inference.gguf_backend(workspace.exports / name / manifest["files"]["F16"]["file"])
    tokenizer = AutoTokenizer.from_pretrained(merged)
    rendered = tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert backend.prompt_tokens(QUESTION) == tokenizer(rendered, add_special_tokens=False)["input_ids"]

    llama, prompt, answer = backend._llama, backend.prompt_tokens(QUESTION), []
    for token in llama.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
        answer.append(token)
        if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token) or len(answer) >= 8:
            break
    assert answer[-1] == tokenizer.convert_tokens_to_ids(family.eos)  # stopped on its own end-of-turn token
    assert tokenizer.decode(answer[:-1]) == "Hello"
    greedy = inference.GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=8)
    assert "".join(backend.stream(QUESTION, greedy)) == "Hello"  # the Chat tab's own path
    backend.close()
