"""Held-out loss on reference answers: transformers models (a base, or base + adapter) and GGUF files.

For each prompt item the conversation is rendered with the model's own chat template twice: without the
reference (ending at the generation prompt) and with it. Only the tokens after the shared prefix, the
reference answer and its end-of-turn marker, count, as in assistant-only SFT loss, so the figure
matches the eval_loss a training run logs on the same split. A GGUF is scored the same way through
llama.cpp's logits, which is what tells whether a quantisation hurt.
"""

from __future__ import annotations

from pathlib import Path

from core.inference.prefix_states import shared_prefix
from core.workspace import Workspace

MAX_TOKENS = 2048  # longer conversations are cut from the left; the reference is at the end
GGUF_MAX_TOKENS = 1024


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
    start = len(prompt_ids) if full_ids[: len(prompt_ids)] == prompt_ids else shared_prefix(prompt_ids, full_ids)
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
    if choice.kind == "gguf":
        return gguf_losses(Path(choice.gguf), items)
    model, tokenizer = load(choice, workspace)
    return [sample_loss(model, tokenizer, item) if item.reference else (0.0, 0) for item in items]


def gguf_losses(path: Path, items) -> list[tuple[float, int]]:
    """The same loss from a GGUF: its own template and tokenizer, logits from llama.cpp."""
    from core.inference import default_threads
    from core.inference.gguf_loader import open_llama

    # logits_all keeps n_ctx x vocab floats (~200 MB for the default model at 1024 tokens).
    llama = open_llama(path, n_ctx=GGUF_MAX_TOKENS, logits_all=True, n_threads=default_threads(), verbose=False)
    results = []
    for item in items:
        if not item.reference:
            results.append((0.0, 0))
            continue
        prompt_ids, full_ids = _gguf_token_pair(llama, item)
        start = shared_prefix(prompt_ids, full_ids)
        cut = max(0, len(full_ids) - GGUF_MAX_TOKENS)
        full_ids, start = full_ids[cut:], max(1, start - cut)
        llama.reset()
        llama.eval(full_ids)
        results.append(_nll(llama.scores[: len(full_ids)], full_ids, start))
    return results


def _gguf_token_pair(llama, item) -> tuple[list[int], list[int]]:
    from core import templates

    template = llama.metadata.get("tokenizer.chat_template") or ""
    bos, eos = (llama.detokenize([token], special=True).decode("utf-8", "replace")
                for token in (llama.token_bos(), llama.token_eos()))
    messages = [*item.history, {"role": "user", "content": item.turns[-1]}]
    prompt = templates.render(template, messages, bos_token=bos, eos_token=eos, add_generation_prompt=True)
    full = templates.render(template, [*messages, {"role": "assistant", "content": item.reference}],
                            bos_token=bos, eos_token=eos, add_generation_prompt=False)
    return tuple(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True) for text in (prompt, full))


def _nll(logits, ids: list[int], start: int) -> tuple[float, int]:
    """Mean negative log-likelihood of ids[start:], each predicted from the logits one position before."""
    import numpy as np

    rows = np.asarray(logits[start - 1: len(ids) - 1], dtype=np.float64)
    if not len(rows):
        return 0.0, 0
    top = rows.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(rows - top).sum(axis=1))
    targets = rows[np.arange(len(rows)), ids[start:]]
    return float((log_norm - targets).mean()), len(rows)
