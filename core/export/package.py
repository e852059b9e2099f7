"""The adapter package: what someone needs to use a run's adapter anywhere, in one folder.

`package_adapter` copies the adapter (safetensors only), its config, tokenizer and chat template, and
writes a model card (`README.md`: base model, dataset version and stats, settings, metrics, licence)
and a standalone `inference.py` that loads base + adapter and chats in a terminal. Settings whose name
mentions a token or secret never reach the card.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from core import atomic
from core.export.run import Run
from core.jobs import read_events
from core.models import DEFAULT_ALIASES, PICKLE_SUFFIXES

DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_LICENSE = "apache-2.0"
TEMPLATES = Path(__file__).resolve().parent / "templates"
SECRET_WORDS = ("token", "secret", "password", "api_key")


def package_dir(run: Run) -> Path:
    return run.exports / "package"


def base_model_id(run: Run) -> str:
    """How the card and inference.py name the base: the default model's Hub id, else the reference."""
    return DEFAULT_HUB_ID if run.base_model in DEFAULT_ALIASES else run.base_model


def package_adapter(run: Run, out: Path | None = None) -> Path:
    out = Path(out) if out else package_dir(run)
    with atomic.directory(out, replace=True, owned=out == package_dir(run)) as tmp:
        for path in run.adapter.iterdir():
            if path.is_file() and path.suffix not in PICKLE_SUFFIXES and path.name != "README.md":
                shutil.copyfile(path, tmp / path.name)
        atomic.write_text(tmp / "README.md", model_card(run))
        script = (TEMPLATES / "inference.py").read_text(encoding="utf-8")
        atomic.write_text(tmp / "inference.py", script.replace("__BASE_MODEL__", repr(base_model_id(run))))
    return out


CARD_KINDS = {
    "adapter": ("peft", ["chatsmith", "lora", "sft"], "A LoRA adapter for"),
    "merged": ("transformers", ["chatsmith", "sft", "merged"], "The LoRA fine-tune merged into"),
    "gguf": ("gguf", ["chatsmith", "sft", "gguf", "llama.cpp"], "GGUF files (llama.cpp, Ollama, LM Studio) of a fine-tune of"),
}


def model_card(run: Run, kind: str = "adapter") -> str:
    settings = public_settings(run.settings.to_dict())
    license_id = DEFAULT_LICENSE
    library, tags, intro = CARD_KINDS[kind]
    front = {"base_model": base_model_id(run), "library_name": library, "license": license_id,
             "pipeline_tag": "text-generation", "tags": tags}
    usage = {"adapter": ["pip install torch transformers peft", "python inference.py"],
             "merged": ["pip install torch transformers", "# AutoModelForCausalLM.from_pretrained(<this repo>)"],
             "gguf": ["ollama create my-model -f <file>.Modelfile   # or: llama-cli -m <file>.gguf -cnv"]}[kind]
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {run.name}", "",
             f"{intro} **{base_model_id(run)}**, fine-tuned with Chatsmith.", "",
             "## Data", "", f"- Dataset version: `{Path(run.settings.dataset or 'unknown').name}`"]
    lines += [f"- {key}: {value}" for key, value in dataset_stats(run).items()]
    lines += ["", "## Settings", "", "```yaml", yaml.safe_dump(settings, sort_keys=True).strip(), "```",
              "", "## Metrics", ""]
    lines += [f"- {key}: {value}" for key, value in final_metrics(run).items()] or ["- none recorded"]
    lines += ["", "## Use", "", "```bash", *usage, "```", "", "## Licence", "",
              f"{license_id}, following the base model's licence; check the dataset's terms too.", ""]
    return "\n".join(lines)


def public_settings(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items()
            if not any(word in str(key).lower() for word in SECRET_WORDS)}


def dataset_stats(run: Run) -> dict[str, Any]:
    """Whatever summary the Data stage left beside the dataset version (stats or manifest JSON)."""
    folder = Path(run.settings.dataset)
    for name in ("stats.json", "manifest.json", "meta.json"):
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
            return {key: value for key, value in data.items() if isinstance(value, (int, float, str))}
    return {}


def final_metrics(run: Run) -> dict[str, Any]:
    """The last value of each metric in the run's events (loss, eval_loss, ...)."""
    metrics: dict[str, Any] = {}
    for event in read_events(run.folder):
        for key, value in event.items():
            if key != "time" and isinstance(value, (int, float)):
                metrics[key] = round(value, 4) if isinstance(value, float) else value
    return metrics


def training_system_prompt(run: Run, limit: int = 2000) -> str:
    """The system prompt most of the run's training conversations open with ("" when they have none),
    read from the first `limit` rows: the prompt the model learnt to answer under, which an Ollama
    Modelfile should set too."""
    from collections import Counter

    if not run.settings.dataset:
        return ""
    path = Path(run.settings.dataset) / "train.jsonl"
    counts: Counter[str] = Counter()
    rows = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for rows, line in enumerate(handle, start=1):
                if rows > limit:
                    break
                try:
                    first = (json.loads(line).get("messages") or [{}])[0]
                except (ValueError, AttributeError, IndexError):
                    continue
                counts[first.get("content", "") if first.get("role") == "system" else ""] += 1
    except OSError:
        return ""
    prompt, count = counts.most_common(1)[0] if counts else ("", 0)
    return prompt if isinstance(prompt, str) and count * 2 > max(sum(counts.values()), 1) else ""
