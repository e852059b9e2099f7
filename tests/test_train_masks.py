"""Loss masks: every assistant turn and its end-of-turn token are trained, nothing else."""

from __future__ import annotations

import pytest

from core.errors import BadInputError
from core.masks import TRAINED, assistant_token_mask, highlight_trained, lint_masks

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Your name?"},
    {"role": "assistant", "content": "Kestrel."},
]

# ChatML with {% generation %} markers, as templates that support assistant masks write it.
MARKED_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] + '<|im_end|>' }}"
    "{% endgeneration %}{{ '\n' }}{% else %}{{ message['content'] + '<|im_end|>\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Markers around nothing: a template that "supports" masks yet would train no token at all.
EMPTY_MARKERS = MARKED_CHATML.replace("{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}",
                                      "{{ message['content'] + '<|im_end|>' }}{% generation %}{% endgeneration %}")
# A template that never closes assistant turns: the model would never learn to stop.
NO_END_OF_TURN = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] }}"
    "{% if message['role'] != 'assistant' %}{{ '<|im_end|>' }}{% endif %}{{ '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture
def tokenizer(default_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_tokenizer_dir)


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_multi_turn_mask_equals_hand_computed_expectation(tokenizer):
    # ChatML pieces written out by hand; True only for each answer and its <|im_end|>.
    pieces = [
        ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", False),
        ("Hello!<|im_end|>", True),
        ("\n<|im_start|>user\nYour name?<|im_end|>\n<|im_start|>assistant\n", False),
        ("Kestrel.<|im_end|>", True),
        ("\n", False),
    ]
    expected_ids, expected_mask = [], []
    for text, trained in pieces:
        piece = _ids(tokenizer, text)
        expected_ids += piece
        expected_mask += [trained] * len(piece)

    ids, mask = assistant_token_mask(tokenizer, CONVERSATION)

    assert ids == expected_ids
    assert mask == expected_mask
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert [tid for tid, flag in zip(ids, mask) if flag].count(end_of_turn) == 2


def test_generation_markers_give_the_same_mask_as_prefixes(tokenizer):
    by_prefix = assistant_token_mask(tokenizer, CONVERSATION)
    tokenizer.chat_template = MARKED_CHATML

    assert assistant_token_mask(tokenizer, CONVERSATION) == by_prefix


def test_lint_passes_the_default_template_and_reports_the_share(tokenizer):
    report = lint_masks(tokenizer, [CONVERSATION])

    assert report.end_of_turn_trained
    assert 0 < report.trained_tokens < report.total_tokens


def test_lint_catches_an_all_masked_template(tokenizer):
    tokenizer.chat_template = EMPTY_MARKERS

    with pytest.raises(BadInputError, match="would be trained"):
        lint_masks(tokenizer, [CONVERSATION])


def test_lint_catches_a_template_that_never_trains_end_of_turn(tokenizer):
    tokenizer.chat_template = NO_END_OF_TURN

    with pytest.raises(BadInputError, match="end-of-turn"):
        lint_masks(tokenizer, [CONVERSATION])


def test_highlight_marks_exactly_the_answers(tokenizer):
    runs = highlight_trained(tokenizer, CONVERSATION)

    assert [text for text, label in runs if label == TRAINED] == ["Hello!<|im_end|>", "Kestrel.<|im_end|>"]
    assert "".join(text for text, _ in runs) == tokenizer.apply_chat_template(CONVERSATION, tokenize=False)


def test_a_model_without_chat_template_is_a_clear_error(tokenizer):
    tokenizer.chat_template = None

    with pytest.raises(BadInputError, match="no chat template"):
        assistant_token_mask(tokenizer, CONVERSATION)


def _trained_texts(tokenizer, messages):
    return [text for text, label in highlight_trained(tokenizer, messages) if label == TRAINED]


def test_turns_are_found_when_the_tokenizer_merges_across_their_start(tokenizer):
    from tests.families import FAMILIES

    # Llama 3 writes "\n\n" before each answer. This byte-level BPE tokenises a trailing "\n\n" as one token
    # but "\n\nHello" as "\n", "\n", "Hello": the prompt's tokens are no prefix of the conversation's.
    llama3 = FAMILIES["llama3"]
    tokenizer.add_special_tokens({"additional_special_tokens": list(llama3.added)})
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.chat_template = llama3.bos, llama3.eos, llama3.template

    assert _trained_texts(tokenizer, CONVERSATION) == ["Hello!<|eot_id|>", "Kestrel.<|eot_id|>"]
    assert lint_masks(tokenizer, [CONVERSATION]).end_of_turn_trained  # <|eot_id|>, not the vocabulary's <|im_end|>


def test_tokenizers_without_offsets_get_the_same_mask(tokenizer, monkeypatch):
    with_offsets = assistant_token_mask(tokenizer, CONVERSATION)
    monkeypatch.setattr(type(tokenizer), "is_fast", property(lambda self: False))

    assert assistant_token_mask(tokenizer, CONVERSATION) == with_offsets
