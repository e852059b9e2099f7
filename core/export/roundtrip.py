"""Round-trip check: the same greedy prompts through every exported form, compared token by token.

The reference is base + adapter in transformers, the base at full precision. The merged folder
(transformers) and each GGUF (llama-cpp-python, fed the very same prompt token ids, so tokenisation
differences cannot hide or fake a divergence) must reproduce it. For a QLoRA run the model as trained
(4-bit base + adapter) is measured beside them and its difference stated, never judged (`as_trained`).
The report gives, per model, the share of reference tokens reproduced at
the same position, the first divergence per prompt, and for GGUFs the perplexity on validation samples
next to F16's. A merged model that does not reproduce base + adapter fails the export loudly.

The check is greedy and so repeatable: `ensure_report` keeps a report whose inputs (the adapter, the merge, each
GGUF, the prompts and samples) have not changed since it was written, as `merge.ensure_merged` keeps a merge, so
asking again after an export that already checked its files costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from core import atomic
from core.export.merge import ExportCheckError, load_with_adapter, logits, probe_inputs, trained_in_4bit
from core.export.run import Run
from core.workspace import Workspace

PROMPTS = ["What is the capital of France?", "Give me three tips for staying focused.",
           "Write a haiku about the sea."]
SAMPLES = [
    [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 equals 4."}],
    [{"role": "user", "content": "Name a primary colour."}, {"role": "assistant", "content": "Blue is one."}],
]
VALIDATION_FILES = ("validation.jsonl", "val.jsonl", "eval.jsonl", "test.jsonl")
MERGED_MIN_AGREEMENT = 1.0  # fp32 merge is exact up to rounding; greedy decoding must not move
AS_TRAINED = "4-bit base + adapter (as trained)"


def roundtrip(workspace: Workspace, run: Run, merged: Path | None, ggufs: dict[str, Path],
              max_new_tokens: int = 24, log=print) -> dict[str, Any]:
    model, tokenizer = load_with_adapter(run, workspace)
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                             tokenize=True, return_dict=False) for p in PROMPTS]
    prompts = [list(ids["input_ids"]) if isinstance(ids, dict) else list(ids) for ids in prompts]
    log("Generating with base + adapter (the reference)…")
    reference = _hf_generate(model, prompts, max_new_tokens, tokenizer.eos_token_id)
    reference_logits = logits(model, probe_inputs(tokenizer))
    del model
    report: dict[str, Any] = {"reference": "base+adapter", "prompts": PROMPTS, "max_new_tokens": max_new_tokens,
                              "reference_texts": [tokenizer.decode(t, skip_special_tokens=True) for t in reference],
                              "models": {}}
    if trained_in_4bit(run):
        log("Generating with the 4-bit base + adapter (the model as trained)…")
        report["trained_in_4bit"] = as_trained(workspace, run, prompts, reference, reference_logits, max_new_tokens)
        if report["trained_in_4bit"]["measured"]:
            report["models"][AS_TRAINED] = report["trained_in_4bit"]["entry"]
    if merged:
        from core.models import load_causal_lm

        log("Generating with the merged model…")
        outputs = _hf_generate(load_causal_lm(merged).eval(), prompts, max_new_tokens, tokenizer.eos_token_id)
        report["models"]["merged"] = compare(reference, outputs, tokenizer)
    samples = [_ids(tokenizer, sample) for sample in validation_samples(workspace, run)]
    for quant, path in ggufs.items():
        log(f"Generating with the {quant} GGUF…")
        llama = _llama(path)
        entry = compare(reference, [_gguf_generate(llama, p, max_new_tokens) for p in prompts], tokenizer)
        entry["perplexity"] = round(perplexity(llama, samples), 4)
        report["models"][quant] = entry
        del llama
    if "F16" in report["models"]:
        f16 = report["models"]["F16"]["perplexity"]
        for entry in report["models"].values():
            if "perplexity" in entry:
                entry["perplexity_vs_f16"] = round(entry["perplexity"] / f16, 4)
    _refuse_bad_merge(report)
    return report


def ensure_report(workspace: Workspace, run: Run, merged: Path | None, ggufs: dict[str, Path],
                  max_new_tokens: int = 24, log=print) -> tuple[dict[str, Any], bool]:
    """The round-trip report of these files, and whether it was already written: a report is kept when none of
    what it read has changed since (compared by size and modification time, as `make` does), else measured anew
    and written."""
    wanted = _inputs(workspace, run, merged, ggufs, max_new_tokens)
    path = run.exports / "roundtrip.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    if kept.get("inputs") == wanted:
        log("Round-trip report is up to date (nothing it checked has changed since it was written): kept.")
        return kept, True
    report = roundtrip(workspace, run, merged, ggufs, max_new_tokens, log)
    report["inputs"] = wanted
    write_report(run, report)
    return report, False


def _inputs(workspace: Workspace, run: Run, merged: Path | None, ggufs: dict[str, Path],
            max_new_tokens: int) -> dict[str, Any]:
    """What a report depends on, as JSON: each file it reads by size and modification time, and a digest of
    the prompts and samples it asks with. Adapter and merge stand for the base model too, as in `ensure_merged`."""
    def stamp(path: Path) -> list[int] | None:
        try:
            status = path.stat()
        except OSError:
            return None
        return [status.st_size, status.st_mtime_ns]

    asked = json.dumps([PROMPTS, validation_samples(workspace, run), max_new_tokens], sort_keys=True)
    return {"adapter": {p.name: stamp(p) for p in sorted(run.adapter.glob("adapter_*"))},
            "merged": stamp(merged / "chatsmith_merge.json") if merged else None,
            "ggufs": {quant: [path.name, stamp(path)] for quant, path in sorted(ggufs.items())},
            "asked": hashlib.sha256(asked.encode()).hexdigest()}


def as_trained(workspace: Workspace, run: Run, prompts: list[list[int]], reference: list[list[int]],
               reference_logits, max_new_tokens: int) -> dict[str, Any]:
    """How far the full-precision merge answers from the QLoRA model as trained: stated, never a failure.

    The adapter learnt on NF4-rounded weights; merged into the unquantised base it meets slightly
    different ones. That difference is the point of merging at full precision, so it is reported (token
    agreement and the largest probe-logit difference, relative to the logit range), not refused.
    """
    try:
        model, tokenizer = load_with_adapter(run, workspace, in_4bit=True)
    except (ImportError, RuntimeError, ValueError) as error:  # no bitsandbytes (Apple silicon), or no kernel
        return {"measured": False, "reason": f"the 4-bit base cannot be loaded here ({error})"}
    outputs = _hf_generate(model, prompts, max_new_tokens, tokenizer.eos_token_id)
    difference = (logits(model, probe_inputs(tokenizer)) - reference_logits).abs().max()
    spread = float(reference_logits.max() - reference_logits.min()) or 1.0
    entry = compare(reference, outputs, tokenizer)
    entry["logit_difference"] = round(float(difference) / spread, 6)
    del model
    return {"measured": True, "entry": entry,
            "note": (f"Trained on a 4-bit NF4 base, merged into the full-precision base: greedy answers agree on "
                     f"{entry['agreement']:.0%} of tokens, probe logits differ by up to "
                     f"{entry['logit_difference']:.2%} of their range. Expected, not an error.")}


def write_report(run: Run, report: dict[str, Any]) -> Path:
    return atomic.write_json(run.exports / "roundtrip.json", report)


def compare(reference: list[list[int]], outputs: list[list[int]], tokenizer) -> dict[str, Any]:
    """Share of reference tokens reproduced in place, and where each prompt first diverged (or None)."""
    matched, total, divergences = 0, 0, []
    for ref, out in zip(reference, outputs):
        same = [a == b for a, b in zip(ref, out)]
        matched += sum(same)
        total += max(len(ref), len(out))
        first = next((i for i, ok in enumerate(same) if not ok), None)
        divergences.append(first if first is not None or len(ref) == len(out) else min(len(ref), len(out)))
    return {"agreement": round(matched / total, 4) if total else 1.0, "first_divergence": divergences,
            "texts": [tokenizer.decode(o, skip_special_tokens=True) for o in outputs]}


def perplexity(llama, samples: list[list[int]]) -> float:
    """exp(mean negative log-likelihood) of the samples' tokens, from llama.cpp's own logits."""
    import numpy as np

    nll, count = 0.0, 0
    for ids in samples:
        llama.reset()
        llama.eval(ids)
        scores = np.asarray(llama.scores[: len(ids) - 1], dtype=np.float64)
        scores -= scores.max(axis=1, keepdims=True)
        log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        nll -= float(log_probs[np.arange(len(ids) - 1), ids[1:]].sum())
        count += len(ids) - 1
    return math.exp(nll / max(count, 1))


def validation_samples(workspace: Workspace, run: Run, limit: int = 8) -> list[list[dict]]:
    """Conversations from the dataset version's validation split, else a small built-in set."""
    folder = Path(run.settings.dataset)
    folder = folder if folder.is_absolute() else workspace.root / folder
    for name in VALIDATION_FILES:
        path = folder / name
        if path.is_file():
            samples = []
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    messages = json.loads(line).get("messages")
                except (ValueError, AttributeError):
                    continue
                if messages:
                    samples.append(messages)
                if len(samples) >= limit:
                    break
            if samples:
                return samples
    return SAMPLES


def _refuse_bad_merge(report: dict[str, Any]) -> None:
    merged = report["models"].get("merged")
    if merged and merged["agreement"] < MERGED_MIN_AGREEMENT:
        raise ExportCheckError(
            f"The merged model's greedy answers differ from base + adapter (agreement {merged['agreement']:.0%}, "
            f"first divergence at tokens {merged['first_divergence']}).",
            "Merge again in float32; if it persists, the adapter uses layers that do not merge exactly.")


def _hf_generate(model, prompts: list[list[int]], max_new_tokens: int, eos: int | None) -> list[list[int]]:
    import torch

    outputs = []
    with torch.no_grad():
        for ids in prompts:
            tensor = torch.tensor([ids], device=model.device)
            generated = model.generate(input_ids=tensor, attention_mask=torch.ones_like(tensor), do_sample=False,
                                       max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=eos)
            outputs.append(_until_eos(generated[0, len(ids):].tolist(), eos))
    return outputs


def _gguf_generate(llama, ids: list[int], max_new_tokens: int) -> list[int]:
    llama.reset()
    out = []
    for token in llama.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
        if llama.token_eos() == token or len(out) >= max_new_tokens:
            break
        out.append(token)
    return out


def _until_eos(tokens: list[int], eos: int | None) -> list[int]:
    return tokens[: tokens.index(eos)] if eos is not None and eos in tokens else tokens


def _ids(tokenizer, messages: list[dict]) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    return list(ids["input_ids"]) if isinstance(ids, dict) else list(ids)


def _llama(path: Path):
    from core.inference import default_threads
    from core.inference.gguf_loader import open_llama

    return open_llama(path, n_ctx=512, n_threads=default_threads(), logits_all=True, verbose=False)
