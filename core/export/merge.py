"""Merge a run's LoRA adapter into its base model and prove the merge changed nothing.

`merge_run` loads the base once at full precision, wraps it with the adapter, records the logits of a
probe prompt, merges in place (`merge_and_unload`, so memory holds one copy of the weights), records the
logits again and refuses to write anything if they disagree (issue 5: "the export fails loudly"). A
QLoRA adapter, trained on a 4-bit base, is merged into that base reloaded unquantised, never into its
dequantised 4-bit weights, so the export does not inherit NF4's rounding; the round-trip report states
how far this moves the answers from the model as trained. The merged folder
holds safetensors, the tokenizer and the chat template, so llama.cpp's converter can read it as is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from core import atomic, models
from core.errors import BadInputError, ChatsmithError
from core.export.run import Run
from core.workspace import Workspace

PROBE = [{"role": "user", "content": "What is the capital of France?"}]
DTYPES = ("auto", "float32", "bfloat16", "float16")
TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2, "float16": 2e-2}
"""Largest logit difference allowed between merged and base + adapter, relative to the logit range."""


class ExportCheckError(ChatsmithError):
    """An exported file does not behave like its source (merge mismatch, GGUF without stop tokens)."""


@dataclass(frozen=True)
class MergeSettings:
    dtype: str = "auto"
    """Weights of the merged model. "auto" picks what the device handles: float32 on CPUs (bf16 is ~10x
    slower there), bfloat16 on GPUs with native bf16, float16 on other GPUs and Apple silicon."""
    max_shard_size: str = "2GB"
    """Safetensors shard size, so large models never need one huge file in memory."""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise BadInputError(f"Merge dtype '{self.dtype}' is not one of {', '.join(DTYPES)}.")


def resolve_dtype(dtype: str) -> str:
    if dtype != "auto":
        return dtype
    import torch

    if torch.cuda.is_available():
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float16" if torch.backends.mps.is_available() else "float32"


def merged_dir(run: Run) -> Path:
    return run.exports / "merged"


def tokenizer_source(run: Run, base: Path) -> Path:
    """The adapter's own tokenizer (it carries the chat template training used), else the base's."""
    return run.adapter if (run.adapter / "tokenizer_config.json").is_file() else base


def load_with_adapter(run: Run, workspace: Workspace, dtype: str = "float32", in_4bit: bool = False):
    """(PEFT model of base + adapter, tokenizer), ready for inference: on the CPU at `dtype`, or with the
    base in 4-bit NF4 as a QLoRA run trained it (where bitsandbytes can hold it)."""
    import torch
    from peft import PeftModel

    base = models.resolve(run.base_model, workspace)
    if models.stored_quantized(base):
        # Merging into dequantised weights would bake their rounding into the export for good.
        raise BadInputError(f"The base model {base.name} is stored quantised ({models.stored_quantized(base)}).",
                            "Export from the base's full-precision release; QLoRA quantises it on load.")
    quantized = {}
    if in_4bit:
        from core.train.recipe import training_device

        quantized = dict(quantization_config=models.nf4_config(getattr(torch, dtype)),
                         device_map={"": training_device()})
    model = models.load_causal_lm(base, dtype=getattr(torch, dtype), **quantized)
    model = PeftModel.from_pretrained(model, run.adapter, is_trainable=False)
    tokenizer = models.load_tokenizer(tokenizer_source(run, base))
    return model.eval(), tokenizer


def trained_in_4bit(run: Run) -> bool:
    return run.settings.load_in_4bit


def merge_run(workspace: Workspace, run: Run, settings: MergeSettings = MergeSettings(),
              out: Path | None = None) -> Path:
    """Write the merged model (atomically) and return its folder. Refuses on a logit mismatch."""
    out = Path(out) if out else merged_dir(run)
    dtype = resolve_dtype(settings.dtype)
    model, tokenizer = load_with_adapter(run, workspace, dtype)
    inputs = probe_inputs(tokenizer)
    before = logits(model, inputs)
    merged = model.merge_and_unload()
    after = logits(merged, inputs)
    check_same(before, after, dtype)
    size = sum(p.numel() * p.element_size() for p in merged.parameters())
    atomic.ensure_free_space(out.parent, int(size * 1.1), "the merged model")
    with atomic.directory(out, replace=True, owned=out == merged_dir(run)) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True, max_shard_size=settings.max_shard_size)
        tokenizer.save_pretrained(tmp)
        _copy_chat_template(tokenizer_source(run, models.resolve(run.base_model, workspace)), tmp)
        # A QLoRA adapter is merged into the base reloaded at `dtype`, never into its 4-bit form.
        atomic.write_json(tmp / "chatsmith_merge.json", {"run": run.name, "base": run.base_model, "dtype": dtype,
                                                         "trained_in_4bit": trained_in_4bit(run)})
    return out


def probe_inputs(tokenizer):
    return tokenizer.apply_chat_template(PROBE, add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)


def logits(model, inputs):
    import torch

    with torch.no_grad():  # on the model's device: a 4-bit base sits where bitsandbytes put it
        return model(**{key: value.to(model.device) for key, value in inputs.items()}).logits.float().cpu()


def check_same(before, after, dtype: str) -> float:
    """Largest difference relative to the logit range; raise when above the dtype's tolerance."""
    spread = float(before.max() - before.min()) or 1.0
    difference = float((before - after).abs().max()) / spread
    if difference > TOLERANCE[dtype]:
        raise ExportCheckError(
            f"The merged model disagrees with base + adapter (largest logit difference {difference:.2e} of "
            f"the range, allowed {TOLERANCE[dtype]:.0e}); nothing was written.",
            "Merge in float32, or report the adapter's settings: it may use layers PEFT cannot merge.",
        )
    return difference


def _copy_chat_template(source: Path, target: Path) -> None:
    # transformers 5 saves the template as chat_template.jinja; older folders keep it in
    # tokenizer_config.json. Copy the file too, so llama.cpp's converter finds it either way.
    jinja = source / "chat_template.jinja"
    if jinja.is_file() and not (target / "chat_template.jinja").is_file():
        shutil.copyfile(jinja, target / "chat_template.jinja")


def ensure_merged(workspace: Workspace, run: Run, settings: MergeSettings = MergeSettings()) -> Path:
    """The merged folder, merging again only when the adapter is newer than the last merge."""
    out = merged_dir(run)
    marker = out / "chatsmith_merge.json"
    adapter = run.adapter / "adapter_model.safetensors"
    if marker.is_file() and marker.stat().st_mtime >= adapter.stat().st_mtime:
        return out
    return merge_run(workspace, run, settings, out)
