"""Held-out loss on reference answers, for transformers models (a base, or a base + adapter).

For each prompt item the conversation is rendered with the model's own chat template twice: without the
reference (ending at the generation prompt) and with it. Only the tokens after the shared prefix, the
reference answer and its end-of-turn marker, count, as in assistant-only SFT loss, so the figure
matches the eval_loss a training run logs on the same split.
"""

from __future__ import annotations

from pathlib import Path

from core.workspace import Workspace

MAX_TOKENS = 2048  # longer conversations are cut from the left; the reference is at the end


def load(choice, workspace: Workspace):
    """(model, tokenizer) in eval mode on the CPU; an adapter is applied on top of its base."""
    from core import models

    folder = models.resolve(choice.model, workspace)
    model = models.load_causal_lm(folder)
    tokenizer_dir = folder
    if choice.kind == "adapter":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(choice.adapter))
        if (Path(choice.adapter) / "tokenizer_config.json").is_file():
            tokenizer_dir = Path(choice.adapter)
    return model.eval(), models.load_tokenizer(tokenizer_dir)


def sample_loss(model, tokenizer, item) -> tuple[float, int]:
    """Mean token loss on the reference and the number of tokens it covers."""
    import torch

    messages = [*item.history, *[{"role": "user", "content": turn} for turn in item.turns[-1:]]]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": item.reference}],
                                         tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    start = len(prompt_ids) if full_ids[: len(prompt_ids)] == prompt_ids else _common_prefix(prompt_ids, full_ids)
    labels = [-100] * start + full_ids[start:]
    full_ids, labels = full_ids[-MAX_TOKENS:], labels[-MAX_TOKENS:]
    counted = sum(1 for label in labels[1:] if label != -100)  # the first label has no prediction
    if not counted:
        return 0.0, 0
    with torch.no_grad():
        output = model(input_ids=torch.tensor([full_ids]), labels=torch.tensor([labels]))
    return float(output.loss), counted


def losses(choice, items, workspace: Workspace) -> list[tuple[float, int]]:
    """(loss, tokens) per item; items without a reference give (0.0, 0)."""
    model, tokenizer = load(choice, workspace)
    return [sample_loss(model, tokenizer, item) if item.reference else (0.0, 0) for item in items]


def _common_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count
