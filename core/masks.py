"""Loss masks for chat training: which tokens of a rendered conversation the model learns from.

Contract: `assistant_token_mask(tokenizer, messages)` returns the input ids of the whole conversation
as the model's own chat template renders it, and one boolean per id that is True exactly for the
tokens that are trained: the content and the end-of-turn token of EVERY assistant turn. System and user
turns, role headers and the whitespace a template puts after an end-of-turn token are not trained.

Two ways to find those tokens:

* the template marks them itself with `{% generation %}` blocks: transformers returns the mask
  (`return_assistant_tokens_mask`);
* otherwise (ChatML templates such as the default model's have no markers) the mask is built from
  rendered prefixes: the conversation rendered up to each assistant turn with the generation prompt,
  and up to the end of that turn. The tokens of the whole conversation whose characters fall in
  between are the turn (as transformers maps `{% generation %}` blocks to tokens).

`lint_masks` fails fast when a template would train (almost) nothing or never the end-of-turn token
(a run whose every label is masked learns nothing at loss 0), and `highlight_trained` renders a sample
for `gr.HighlightedText`. For preference pairs,
`completion_split` splits prompt and answer tokens as TRL's DPO / KTO trainers do, `lint_pairs` is their
lint and `highlight_pair` their sample. This module knows
nothing about datasets, trainers or the UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import BadInputError

Message = dict[str, str]
TRAINED = "trained"
MIN_TRAINED_SHARE = 0.02  # below this a run learns almost nothing while looking healthy (loss ~ 0)


def assistant_token_mask(tokenizer: Any, messages: Sequence[Message]) -> tuple[list[int], list[bool]]:
    """Input ids of the rendered conversation and True for every trained token."""
    if not tokenizer.chat_template:
        raise BadInputError(
            "The tokenizer has no chat template, so conversations cannot be rendered for training.",
            "Pick an instruct/chat model, or a model folder whose tokenizer_config.json has a chat_template.",
        )
    from jinja2 import TemplateError

    try:
        if _has_generation_markers(tokenizer.chat_template):
            return _mask_from_markers(tokenizer, messages)
        return _mask_from_prefixes(tokenizer, messages)
    except TemplateError as error:  # e.g. Gemma 2's raise_exception('System role not supported')
        raise BadInputError(f"The model's chat template refuses this conversation: {error}",
                            "Drop what the template refuses (often the system prompt) in the Data tab, or pick a "
                            "model whose template accepts it.") from error


def _has_generation_markers(template: str) -> bool:
    return "{% generation %}" in template or "{%- generation %}" in template


def _mask_from_markers(tokenizer: Any, messages: Sequence[Message]) -> tuple[list[int], list[bool]]:
    encoded = tokenizer.apply_chat_template(
        list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = list(encoded["input_ids"])
    return ids, [bool(flag) for flag in encoded["assistant_masks"]]


def _render_text(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def _render_ids(tokenizer: Any, messages: Sequence[Message], generation_prompt: bool) -> list[int]:
    # The template already wrote any BOS/special tokens it wants; adding more would shift every split.
    return list(tokenizer(_render_text(tokenizer, messages, generation_prompt), add_special_tokens=False)["input_ids"])


def _mask_from_prefixes(tokenizer: Any, messages: Sequence[Message]) -> tuple[list[int], list[bool]]:
    text = _render_text(tokenizer, messages, generation_prompt=False)
    # The template already wrote any BOS/special tokens it wants; adding more would shift every mask.
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=tokenizer.is_fast)
    ids = list(encoded["input_ids"])
    spans = encoded.get("offset_mapping") or _spans_without_offsets(tokenizer, ids)
    mask = [False] * len(ids)
    end_of_turn = _end_of_turn_id(tokenizer)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render_text(tokenizer, messages[:index], generation_prompt=True)
        with_turn = _render_text(tokenizer, messages[: index + 1], generation_prompt=False)
        if not (text.startswith(with_turn) and with_turn.startswith(prompt)):
            raise BadInputError(
                f"The chat template renders turn {index + 1} differently once later turns follow, so its "
                "trained tokens cannot be located.",
                "Use a model whose template renders each turn independently, or one with {% generation %} markers.",
            )
        # Characters, not token prefixes, mark the turn: a tokenizer may merge the prompt's last whitespace
        # with the answer's first word, and the token holding both belongs to the answer.
        start = next((i for i, (_, end) in enumerate(spans) if end > len(prompt)), len(ids))
        stop = next((i for i, (begin, _) in enumerate(spans) if begin >= len(with_turn)), len(ids))
        stop = _trim_after_end_of_turn(ids, start, stop, end_of_turn)
        for position in range(start, stop):
            mask[position] = True
    return ids, mask


def _spans_without_offsets(tokenizer: Any, ids: list[int]) -> list[tuple[int, int]]:
    """Character spans from the decoded pieces, for slow tokenizers that give no offsets."""
    spans, position = [], 0
    for token in ids:
        piece = tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        spans.append((position, position + len(piece)))
        position += len(piece)
    return spans


END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "</s>")


def _end_of_turn_id(tokenizer: Any) -> int | None:
    """The token that closes a turn: a known end-of-turn token the template writes, else the EOS token.

    A vocabulary often holds several of them (a Llama-3 tokenizer built from another family's keeps its
    `<|im_end|>`); the one the template really writes is the one the model must learn to stop on.
    """
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
    written = [token for token in END_OF_TURN_TOKENS if token in template]
    for token in (*written, tokenizer.eos_token):
        if (token_id := _vocabulary_id(tokenizer, token)) is not None:
            return token_id
    return None


def _vocabulary_id(tokenizer: Any, token: str | None) -> int | None:
    """The id of `token` if the vocabulary holds it. Asked token by token: `get_vocab()` builds the whole
    vocabulary as a dict on every call (95 ms for the default model's 49k), once per training conversation."""
    if not token:
        return None
    token_id = tokenizer.convert_tokens_to_ids(token)
    return token_id if isinstance(token_id, int) and tokenizer.convert_ids_to_tokens(token_id) == token else None


def _trim_after_end_of_turn(ids: list[int], start: int, stop: int, end_of_turn: int | None) -> int:
    """Stop right after the turn's last end-of-turn token: the newline a template adds is not the answer."""
    for position in range(stop - 1, start - 1, -1):
        if ids[position] == end_of_turn:
            return position + 1
    return stop


# --- lint and display ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskReport:
    """What a set of sample conversations would train."""

    total_tokens: int
    """Tokens in all rendered samples."""
    trained_tokens: int
    """Tokens whose loss counts."""
    end_of_turn_trained: bool
    """Whether the end-of-turn token is trained anywhere, so the model learns to stop."""

    @property
    def trained_share(self) -> float:
        return self.trained_tokens / self.total_tokens if self.total_tokens else 0.0


def lint_masks(tokenizer: Any, conversations: Sequence[Sequence[Message]],
               min_share: float = MIN_TRAINED_SHARE) -> MaskReport:
    """Check masks on a few samples before a run starts; raise BadInputError when they are useless."""
    end_of_turn = _end_of_turn_id(tokenizer)
    total = trained = 0
    end_trained = False
    for messages in conversations:
        ids, mask = assistant_token_mask(tokenizer, messages)
        total += len(ids)
        trained += sum(mask)
        end_trained = end_trained or any(flag and tid == end_of_turn for tid, flag in zip(ids, mask))
    report = MaskReport(total, trained, end_trained)
    if report.trained_share < min_share:
        raise BadInputError(
            f"Only {trained} of {total} tokens ({report.trained_share:.1%}) would be trained: the chat template "
            "hides the assistant turns, so the loss would be near zero and the model would learn nothing.",
            "Check that the samples have assistant turns, or switch off assistant-only loss.",
        )
    if end_of_turn is not None and not end_trained:
        raise BadInputError(
            "The end-of-turn token is never trained, so the fine-tuned model would not learn to stop answering.",
            "Use a chat template that closes assistant turns with its end-of-turn token.",
        )
    return report


def highlight_trained(tokenizer: Any, messages: Sequence[Message]) -> list[tuple[str, str | None]]:
    """The rendered sample as (text, "trained" | None) runs, ready for gr.HighlightedText."""
    ids, mask = assistant_token_mask(tokenizer, messages)
    runs: list[tuple[str, str | None]] = []
    start = 0
    for position in range(1, len(ids) + 1):
        if position == len(ids) or mask[position] != mask[start]:
            text = tokenizer.decode(ids[start:position], skip_special_tokens=False)
            runs.append((text, TRAINED if mask[start] else None))
            start = position
    return runs


# --- preference pairs: prompt and completion --------------------------------------------------------


def completion_split(tokenizer: Any, prompt: Sequence[Message], answer: str) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) as TRL's DPO and KTO trainers split them: the prompt rendered with the
    generation prompt, the completion whatever the full conversation adds after it."""
    if not tokenizer.chat_template:
        raise BadInputError("The tokenizer has no chat template, so preference pairs cannot be rendered.",
                            "Pick an instruct/chat model.")
    prompt_ids = _render_ids(tokenizer, prompt, generation_prompt=True)
    full_ids = _render_ids(tokenizer, [*prompt, {"role": "assistant", "content": answer}], generation_prompt=False)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise BadInputError(
            "The chat template renders the prompt differently once the answer follows, so the trainer would "
            "learn from a context the model never sees when it answers.",
            "Use a model whose template renders the prompt the same way with and without the answer.")
    return prompt_ids, full_ids[len(prompt_ids):]


def lint_pairs(tokenizer: Any, examples: Sequence[tuple[Sequence[Message], str]]) -> MaskReport:
    """Check (prompt, answer) samples before a DPO/KTO run: every answer trains some tokens, and the
    end-of-turn token, so the model learns to stop (the preference analogue of `lint_masks`)."""
    end_of_turn = _end_of_turn_id(tokenizer)
    total = trained = 0
    end_trained = False
    for prompt, answer in examples:
        prompt_ids, completion = completion_split(tokenizer, prompt, answer)
        if not completion:
            raise BadInputError(f"An answer renders to no tokens at all (after the prompt {prompt[-1]['content'][:60]!r}).",
                                "Rebuild the preference dataset; empty answers are refused there.")
        total += len(prompt_ids) + len(completion)
        trained += len(completion)
        end_trained = end_trained or end_of_turn in completion
    if end_of_turn is not None and examples and not end_trained:
        raise BadInputError("The answers never include the end-of-turn token, so the model would not learn to stop.",
                            "Use a chat template that closes assistant turns with its end-of-turn token.")
    return MaskReport(total, trained, end_trained)


def highlight_pair(tokenizer: Any, prompt: Sequence[Message], chosen: str,
                   rejected: str | None = None) -> list[tuple[str, str | None]]:
    """The prompt, then the chosen (and rejected) answer's trained tokens, for gr.HighlightedText."""
    prompt_ids, chosen_ids = completion_split(tokenizer, prompt, chosen)
    runs = [(tokenizer.decode(prompt_ids, skip_special_tokens=False), None),
            (tokenizer.decode(chosen_ids, skip_special_tokens=False), "chosen")]
    if rejected is not None:
        runs += [("\n— rejected answer —\n", None),
                 (tokenizer.decode(completion_split(tokenizer, prompt, rejected)[1], skip_special_tokens=False),
                  "rejected")]
    return runs
