"""Automatic metrics for one model over a prompt set with references, run as a background job.

Per sample: ROUGE-L F1 (rouge-score) and sentence BLEU (sacrebleu) against the reference, answer
length in tokens, and whether the answer is empty or looping. Over the set: the means, corpus BLEU, the
empty / looping rates and held-out loss and perplexity on the references (`core.evaluate.heldout`, for
transformers models and GGUFs alike). Text is split the same way everywhere: a CJK character is one token, other
text splits into words, so English and Chinese answers are measured alike. sacrebleu's "zh" tokenizer
does the same (and equals its default "13a" on text without Chinese).
"""

from __future__ import annotations

import dataclasses

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import atomic
from core.errors import BadInputError
from core.evaluate.prompts import PromptItem, load_prompt_set
from core.workspace import Workspace

TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)
LOOP_MIN_TOKENS, LOOP_NGRAM, LOOP_DISTINCT = 16, 4, 0.5


@dataclass(frozen=True)
class MetricsSettings:
    limit: int = 50
    """Samples to score (the first N of the set); generation is the slow part."""
    max_new_tokens: int = 128
    """Answer length cap; a looping answer runs to it."""
    held_out_loss: bool = True
    """Also compute loss / perplexity on the references (loads the model a second time)."""

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise BadInputError("limit must be between 1 and 10000 samples.")
        if not 1 <= self.max_new_tokens <= 4096:
            raise BadInputError("max_new_tokens must be between 1 and 4096.")


class _Tokenizer:
    """rouge-score's default tokenizer drops every non-ASCII character, so Chinese would score 0."""

    def tokenize(self, text: str) -> list[str]:
        return tokens(text)


def tokens(text: str) -> list[str]:
    return [token.lower() for token in TOKEN.findall(text or "")]


def is_looping(text: str) -> bool:
    """Long enough and made of few distinct 4-grams: the answer repeats itself."""
    words = tokens(text)
    if len(words) < LOOP_MIN_TOKENS:
        return False
    grams = [tuple(words[i:i + LOOP_NGRAM]) for i in range(len(words) - LOOP_NGRAM + 1)]
    return len(set(grams)) / len(grams) < LOOP_DISTINCT


def score_sample(answer: str, reference: str | None) -> dict:
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    row = {"length": len(tokens(answer)), "empty": not answer.strip(), "looping": is_looping(answer)}
    if reference:
        rouge = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Tokenizer()).score(reference, answer)
        row["rouge_l"] = rouge["rougeL"].fmeasure
        row["bleu"] = BLEU(tokenize="zh", effective_order=True).sentence_score(answer, [reference]).score
    return row


def summarise(samples: list[dict]) -> dict:
    """Means over the samples; corpus BLEU over those with references."""
    from sacrebleu.metrics import BLEU

    scored = [s for s in samples if s.get("reference")]
    summary = {"samples": len(samples), "with_reference": len(scored),
               "mean_length": _mean([s["length"] for s in samples]),
               "empty_rate": _mean([float(s["empty"]) for s in samples]),
               "looping_rate": _mean([float(s["looping"]) for s in samples]),
               "rouge_l": _mean([s["rouge_l"] for s in scored]),
               "bleu": BLEU(tokenize="zh").corpus_score([s["answer"] for s in scored],
                                                        [[s["reference"] for s in scored]]).score if scored else None}
    losses = [s for s in samples if s.get("loss_tokens")]
    if losses:
        tokens_total = sum(s["loss_tokens"] for s in losses)
        summary["loss"] = sum(s["loss"] * s["loss_tokens"] for s in losses) / tokens_total
        summary["perplexity"] = math.exp(summary["loss"])
    return summary


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def evaluate(choice, items: list[PromptItem], workspace: Workspace, settings: MetricsSettings,
             progress: Callable[[int, int, str], None] = lambda *args: None,
             should_stop: Callable[[], bool] = lambda: False) -> dict:
    """Answer every prompt greedily, score it, then add held-out loss: `{"summary", "samples"}`."""
    from core import inference
    from core.evaluate.contenders import answer_turns, describe_choice

    items = items[: settings.limit]
    backend = inference.open_backend(choice, workspace)
    if hasattr(backend, "without_citations"):  # a model with documents: score its answer, not its source list
        backend = backend.without_citations()
    generation = inference.GenerationSettings(max_new_tokens=settings.max_new_tokens, temperature=0.0)
    samples = []
    for number, item in enumerate(items, start=1):
        if should_stop():
            break
        transcript = list(answer_turns(backend, item, generation, last_only=True))
        answer = transcript[-1] if transcript else ""
        samples.append({"id": item.id, "prompt": item.turns[-1], "reference": item.reference, "answer": answer,
                        **score_sample(answer, item.reference)})
        progress(number, len(items), f"Answered {number} of {len(items)}")
    notes = []
    if not any(item.reference for item in items):
        notes.append("This set has no reference answers, so ROUGE-L, BLEU and loss are left out.")
    elif settings.held_out_loss and samples:
        scored = [_as_read(backend, item, generation) for item in items[: len(samples)]]
        _add_held_out_loss(choice, scored, samples, workspace, progress)
    return {"model": describe_choice(choice), "summary": summarise(samples), "samples": samples, "notes": notes}


def _as_read(backend, item: PromptItem, generation) -> PromptItem:
    """The item as the model reads it: with documents, its last question carries the retrieved sources, so
    the held-out loss measures the reference given the documents."""
    if not hasattr(backend, "ground"):
        return item
    messages = [*item.history, *({"role": "user", "content": turn} for turn in item.turns)]
    asked = backend.ground(messages, generation).messages[-1]["content"]
    return dataclasses.replace(item, turns=(*item.turns[:-1], asked))


def _add_held_out_loss(choice, items, samples, workspace, progress) -> None:
    from core.evaluate import heldout

    progress(len(samples), len(samples), "Computing held-out loss on the references…")
    for sample, (loss, count) in zip(samples, heldout.losses(choice, items, workspace)):
        if count:
            sample["loss"], sample["loss_tokens"] = loss, count


def run_job(ctx) -> dict:
    """Job target: params `choice` (a describe_choice dict), `data` (prompt-set source), settings."""
    from core.evaluate.contenders import choice_from_description
    from core.workspace import Workspace

    params = ctx.params
    workspace = Workspace(Path(params["workspace"]))
    settings = MetricsSettings(**params.get("settings", {}))
    items = load_prompt_set(params["data"])
    ctx.log(f"Scoring {min(len(items), settings.limit)} samples from {params['data']}")
    result = evaluate(choice_from_description(params["choice"]), items, workspace, settings,
                      progress=lambda step, total, message: ctx.progress(step, total, message),
                      should_stop=ctx.should_stop)
    result.update(data=str(params["data"]), finished=time.time())
    atomic.write_json(Path(ctx.folder) / "metrics.json", result)
    ctx.event(**{key: value for key, value in result["summary"].items() if value is not None})
    message = " ".join([summary_line(result["summary"]), *result["notes"]])
    return {"message": message, "metrics": str(Path(ctx.folder) / "metrics.json")}


def summary_line(summary: dict) -> str:
    parts = [f"{summary['samples']} samples"]
    for key, label in (("rouge_l", "ROUGE-L"), ("bleu", "BLEU"), ("perplexity", "perplexity")):
        if summary.get(key) is not None:
            parts.append(f"{label} {summary[key]:.3f}" if key == "rouge_l" else f"{label} {summary[key]:.2f}")
    parts.append(f"empty {summary['empty_rate']:.0%} · looping {summary['looping_rate']:.0%}")
    return " · ".join(parts)
