"""Multi-adapter fusion: two or more adapters of the same base become one new run with PEFT.

`fuse_runs` loads every adapter onto one base model and combines them with PEFT's
`add_weighted_adapter` (linear, cat, TIES, DARE), with a weight per adapter. The result is written as a
new run folder (`adapter/`, the first source's `config.yaml`, `fusion.json` naming the sources and
weights, `report.md`), so every stage (chat, evaluation, export) uses it like a trained run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from core import atomic, models
from core.errors import BadInputError
from core.export.run import Run, open_run
from core.train import runs as train_runs
from core.workspace import Workspace

METHODS = {"linear": "linear", "cat": "cat", "ties": "ties", "dare": "dare_linear", "dare_ties": "dare_ties"}
"""What the UI offers → PEFT's combination_type."""
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


@dataclass(frozen=True)
class FuseSettings:
    runs: tuple[str, ...]
    """Runs whose adapters are combined; all must share one base model."""
    weights: tuple[float, ...] = field(default=())
    """One weight per run; empty means equal weights."""
    method: str = "linear"
    """linear (same rank needed), cat (exact sum of the updates), ties or dare (prune, then merge)."""
    density: float = 0.5
    """TIES / DARE: the share of each update's entries kept."""
    name: str = ""
    """The new run's name; default "fused-<first>-<second>..."."""

    def __post_init__(self) -> None:
        if len(self.runs) < 2:
            raise BadInputError("Fusion needs at least two runs.", "Pick two or more runs of the same base.")
        if self.weights and len(self.weights) != len(self.runs):
            raise BadInputError(f"{len(self.weights)} weights for {len(self.runs)} runs.", "Give one per run.")
        if self.method not in METHODS:
            raise BadInputError(f"Fusion method '{self.method}' is not one of {', '.join(METHODS)}.")
        if not 0.0 < self.density <= 1.0:
            raise BadInputError("Density must be in (0, 1].")


def fuse_runs(workspace: Workspace, settings: FuseSettings) -> Run:
    from peft import PeftModel

    runs = [open_run(workspace, name) for name in settings.runs]
    bases = {run.base_model for run in runs}
    if len(bases) != 1:
        raise BadInputError(f"These runs use different base models ({', '.join(sorted(bases))}).",
                            "Only adapters of the same base can be fused.")
    name = settings.name or "fused-" + "-".join(run.name for run in runs)
    target = workspace.named(workspace.runs, name, "run")
    if target.exists():
        raise BadInputError(f"A run named '{name}' already exists.", "Choose another name.")
    weights = list(settings.weights) or [1.0 / len(runs)] * len(runs)
    base = models.load_causal_lm(models.resolve(runs[0].base_model, workspace))
    model = PeftModel.from_pretrained(base, runs[0].adapter, adapter_name="source0")
    for index, run in enumerate(runs[1:], start=1):
        model.load_adapter(run.adapter, adapter_name=f"source{index}")
    sources = [f"source{i}" for i in range(len(runs))]
    extra = {"density": settings.density} if settings.method in ("ties", "dare", "dare_ties") else {}
    model.add_weighted_adapter(sources, weights, adapter_name="default",
                               combination_type=METHODS[settings.method], **extra)
    with atomic.directory(target) as tmp:
        model.save_pretrained(tmp / "adapter", selected_adapters=["default"], safe_serialization=True)
        for file_name in TOKENIZER_FILES:
            if (runs[0].adapter / file_name).is_file():
                shutil.copyfile(runs[0].adapter / file_name, tmp / "adapter" / file_name)
        train_runs.write_config(tmp, runs[0].settings, final_dir=target)
        atomic.write_json(tmp / train_runs.FUSION_FILE, {"fused_from": [run.name for run in runs], "weights": weights,
                                                         "method": settings.method, "density": settings.density})
        atomic.write_text(tmp / "report.md", f"# {name}\n\nFused from {', '.join(settings.runs)} with "
                                             f"{settings.method} (weights {weights}).\n")
    return open_run(workspace, name)
