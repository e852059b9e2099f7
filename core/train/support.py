"""What will not work for a model here, said before training rather than discovered after it.

Contract: `limits(model_dir)` returns sentences for the pre-flight card and the run's log, empty when the
model goes the whole way (train → merge → GGUF → chat). What stops a run outright (no chat template, a
template that refuses the data, hides the answers or renders a turn differently once later turns
follow) is the mask lint's job (`core.masks`), which runs on the data before any model loads. This
covers what a run would survive but its export would not: an architecture that llama.cpp's converter
has no class for, so the adapter and the merged model export but GGUF (llama.cpp, Ollama, LM Studio)
does not.

The converter's table (`TEXT_MODEL_MAP` in its `conversion` package) is read from its source, not
imported: importing it loads torch and the converter's own copy of `gguf` (see core/export/gguf.py).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
from pathlib import Path


@functools.cache
def converter_architectures() -> frozenset[str]:
    """Architectures (config.json's `architectures`) llama.cpp's converter turns into a GGUF; empty if unknown."""
    spec = importlib.util.find_spec("conversion")
    if spec is None or spec.origin is None:
        return frozenset()
    for node in ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "TEXT_MODEL_MAP":
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def limits(model_dir: Path) -> list[str]:
    """What will not work for the model in `model_dir`, in words; empty when nothing stands in the way."""
    try:
        architectures = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))["architectures"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    known = converter_architectures()
    if known and architectures and not set(architectures) & known:
        return [f"GGUF export will not work: llama.cpp's converter has no support for {architectures[0]}. "
                "Training, the adapter and the merged model do; chat with it through transformers."]
    return []
