"""Long conversations stay cheap: a turn evaluates only its new tokens, also while others chat on the model.

Counted, not timed: a spy on llama-cpp-python's `Llama.eval` records how many prompt tokens each turn
really evaluates. The answer must not change for it: the same seed gives the same text as a cold model.
"""

from __future__ import annotations

import pytest

from core.inference import GenerationSettings
from core.inference.llama_cpp_engine import LlamaCppBackend
from tests.test_chat_backends import tiny_gguf, varied_model_dir  # noqa: F401 (fixtures)

SAMPLED = GenerationSettings(temperature=0.8, max_new_tokens=8, seed=7)


@pytest.fixture
def evaluated(monkeypatch) -> list[int]:
    """The size of each `Llama.eval` call: the first of a turn is its prompt."""
    import llama_cpp

    sizes: list[int] = []
    real_eval = llama_cpp.Llama.eval

    def counting_eval(self, tokens):
        sizes.append(len(tokens))
        return real_eval(self, tokens)

    monkeypatch.setattr(llama_cpp.Llama, "eval", counting_eval)
    return sizes


def user_turn(who: str, turn: int) -> dict:
    return {"role": "user", "content": f"{who} asks question {turn}: what can you tell me about the number {turn * 7}?"}


@pytest.mark.slow
def test_turn_twelve_evaluates_only_new_tokens_while_another_chat_shares_the_model(tiny_gguf, evaluated):
    backend = LlamaCppBackend(tiny_gguf)
    chats = {who: [{"role": "system", "content": f"You help {who}."}] for who in ("Ann", "Bob")}
    for turn in range(1, 12):
        for who, messages in chats.items():  # the two conversations take turns on one llama context
            messages.append(user_turn(who, turn))
            messages.append({"role": "assistant", "content": "".join(backend.stream(messages, SAMPLED))})
    # Turn 12 of Ann's chat, after Bob's turn 11: her last answer, re-tokenized, and her new question.
    prompt = chats["Ann"] + [user_turn("Ann", 12)]
    new_tokens = backend.count_tokens(prompt) - backend.count_tokens(prompt[:-2])
    assert backend.count_tokens(prompt) > 400 and new_tokens < 60
    evaluated.clear()
    warm = "".join(backend.stream(prompt, SAMPLED))
    assert evaluated[0] <= new_tokens
    evaluated.clear()
    cold = "".join(LlamaCppBackend(tiny_gguf).stream(prompt, SAMPLED))
    assert evaluated[0] == backend.count_tokens(prompt)  # the cold model read it all
    assert warm == cold


def test_transformers_turn_twelve_reuses_the_previous_turns_cache(varied_model_dir):
    from core.inference.transformers_engine import TransformersBackend

    backend = TransformersBackend(varied_model_dir)
    messages = [{"role": "system", "content": "You help Ann."}]
    for turn in range(1, 12):
        messages.append(user_turn("Ann", turn))
        messages.append({"role": "assistant", "content": "".join(backend.stream(messages, SAMPLED))})
    prompt = messages + [user_turn("Ann", 12)]
    new_tokens = backend.count_tokens(prompt) - backend.count_tokens(prompt[:-2])
    assert backend.count_tokens(prompt) > 400 and new_tokens < 60
    warm, read = answer_counting_forward(backend, prompt)
    assert read[0] <= new_tokens
    cold, read = answer_counting_forward(TransformersBackend(varied_model_dir), prompt)
    assert read[0] == backend.count_tokens(prompt)  # the cold model read it all
    assert warm == cold


def answer_counting_forward(backend, prompt: list[dict]) -> tuple[str, list[int]]:
    """The answer, and how many tokens each forward pass of the model read (the first: the prompt)."""
    sizes: list[int] = []
    real_forward = backend.model.forward

    def counting_forward(*args, **kwargs):
        sizes.append(kwargs["input_ids"].shape[1])
        return real_forward(*args, **kwargs)

    backend.model.forward = counting_forward
    try:
        return "".join(backend.stream(prompt, SAMPLED)), sizes
    finally:
        del backend.model.forward
