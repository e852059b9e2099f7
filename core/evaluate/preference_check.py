"""The automatic before/after check of a preference run: did it learn the preferences, and did it forget?

Contract: `measure(model, tokenizer, pairs, unpaired, conversations)` scores a model in memory and returns
plain numbers; `compare(before, after, beta)` turns two such measurements into the run's check, and
`check_text(check)` into lines for the report and the Train tab. Nothing here needs a human:

* **held-out pairs**: each answer's log-probability given its prompt. The preference accuracy is the
  share of pairs whose chosen answer the model finds more likely per token than the rejected one (per
  token, so a model is not said to prefer whichever answer is shorter); the reward margin is DPO's
  implicit reward, beta × (how much the chosen answer's summed log-probability rose − how much the
  rejected one's rose), so it is 0 before training by definition and positive when the run moved toward
  the votes;
* **held-out unpaired answers** (KTO): the mean log-probability of good and of bad answers;
* **held-out conversations**: the assistant-token loss and perplexity on a conversation set (the SFT
  run's validation split), so a user sees whether general ability dropped while preferences were learned.

Each sequence is scored alone (no padding), which is exact and, for the few dozen held-out items used,
fast enough.
"""

from __future__ import annotations

import math
from typing import Any

from core.evaluate.heldout import sample_loss
from core.inference.prefix_states import shared_prefix

FORGETTING_RISE = 0.02
"""A held-out conversation loss more than 2 % above its start is reported as possible forgetting."""
MAX_ITEMS = 32
"""Held-out pairs (and answers, and conversations) scored; enough for a stable share, seconds on a CPU."""


def answer_logp(model: Any, tokenizer: Any, prompt: list[dict], answer: str,
                max_length: int = 1024) -> tuple[float, int]:
    """log p(answer | prompt) under the model's chat template, summed over the answer's tokens, and their count."""
    import torch

    prompt_ids = _ids(tokenizer, prompt, generation_prompt=True)
    full_ids = _ids(tokenizer, [*prompt, {"role": "assistant", "content": answer}], generation_prompt=False)
    start = max(shared_prefix(prompt_ids, full_ids), 1)  # the first token has no prediction
    full_ids = full_ids[:max_length]
    if start >= len(full_ids):
        return 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([full_ids], device=device)).logits[0, :-1].float()
    targets = torch.tensor(full_ids[1:], device=device)
    logps = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None])[:, 0]
    return float(logps[start - 1:].sum()), len(full_ids) - start


def measure(model: Any, tokenizer: Any, pairs: list[dict], unpaired: list[dict], conversations: list) -> dict:
    was_training = model.training
    model.eval()
    scored = {"pairs": [(answer_logp(model, tokenizer, p["prompt"], p["chosen"][0]["content"]),
                         answer_logp(model, tokenizer, p["prompt"], p["rejected"][0]["content"]))
                        for p in pairs[:MAX_ITEMS]],
              "unpaired": [(_per_token(answer_logp(model, tokenizer, u["prompt"], u["completion"][0]["content"])),
                            u["label"]) for u in unpaired[:MAX_ITEMS]]}
    losses = [sample_loss(model, tokenizer, item) for item in conversations[:MAX_ITEMS] if item.reference]
    tokens = sum(count for _, count in losses)
    scored["conversation_loss"] = sum(loss * count for loss, count in losses) / tokens if tokens else None
    model.train(was_training)
    return scored


def compare(before: dict, after: dict, beta: float) -> dict:
    """The run's check: accuracy and margins before and after, and the conversation loss both times."""
    check: dict[str, Any] = {"pairs": len(before["pairs"]), "unpaired": len(before["unpaired"])}
    if before["pairs"]:
        check["accuracy_before"] = _share(_per_token(c) > _per_token(r) for c, r in before["pairs"])
        check["accuracy_after"] = _share(_per_token(c) > _per_token(r) for c, r in after["pairs"])
        check["logp_gap_before"] = _mean(_per_token(c) - _per_token(r) for c, r in before["pairs"])
        check["logp_gap_after"] = _mean(_per_token(c) - _per_token(r) for c, r in after["pairs"])
        check["reward_margin_before"] = 0.0
        check["reward_margin_after"] = beta * _mean((ca[0] - cb[0]) - (ra[0] - rb[0]) for (cb, rb), (ca, ra)
                                                    in zip(before["pairs"], after["pairs"]))
    for label, name in ((True, "good"), (False, "bad")):
        for when, scored in (("before", before), ("after", after)):
            values = [logp for logp, kind in scored["unpaired"] if kind is label]
            if values:
                check[f"{name}_logp_{when}"] = _mean(values)
    for when, scored in (("before", before), ("after", after)):
        loss = scored["conversation_loss"]
        if loss is not None:
            check[f"conversation_loss_{when}"] = loss
            check[f"perplexity_{when}"] = math.exp(min(loss, 50.0))
    return check


def check_text(check: dict) -> list[str]:
    lines = []
    if "accuracy_before" in check:
        lines.append(f"Held-out preference accuracy {check['accuracy_before']:.0%} → {check['accuracy_after']:.0%} "
                     f"on {check['pairs']} pairs (chosen minus rejected log-probability per token "
                     f"{check['logp_gap_before']:+.3f} → {check['logp_gap_after']:+.3f}); reward margin "
                     f"{check['reward_margin_after']:+.3f} (0 before)")
    if "good_logp_before" in check or "bad_logp_before" in check:
        parts = [f"{name} answers {check[f'{name}_logp_before']:.2f} → {check[f'{name}_logp_after']:.2f}"
                 for name in ("good", "bad") if f"{name}_logp_before" in check]
        lines.append("Held-out answers' log-probability per token: " + "; ".join(parts))
    if "conversation_loss_before" in check:
        rise = check["conversation_loss_after"] / max(check["conversation_loss_before"], 1e-9) - 1
        verdict = ("no sign of forgetting" if rise <= FORGETTING_RISE else
                   f"up {rise:.0%}: general ability may have dropped (forgetting)")
        lines.append(f"Held-out conversation loss {check['conversation_loss_before']:.3f} → "
                     f"{check['conversation_loss_after']:.3f} (perplexity {check['perplexity_before']:.1f} → "
                     f"{check['perplexity_after']:.1f}): {verdict}")
    elif check:
        lines.append("No conversation set to check forgetting on: start from an SFT run to use its validation split.")
    return lines


def _ids(tokenizer: Any, messages: list[dict], generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _per_token(scored: tuple[float, int]) -> float:
    total, count = scored
    return total / count if count else 0.0


def _share(flags) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
