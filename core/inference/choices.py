"""What a user can chat with: `ModelChoice`, the list of them in a workspace (`list_choices`) and the
`--model / --adapter / --gguf` arguments of the terminal chat and the standalone API.

A choice's `id` is stable (the API's `model` field and the pickers' value): "default" (the packaged GGUF),
"default-transformers", "base/<folder>" for a model under the workspace's models/, "hub/<repo>" for one
in the Hugging Face cache, "run/<run>" for a run's adapter and "gguf/<path under exports/>". Run folders
are found through `core.train.runs`, so their layout is known in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError
from core.models import DEFAULT_ALIASES, DEFAULT_MODEL
from core.workspace import Workspace

DEFAULT_GGUF_LABEL = "Default model · SmolLM2-135M-Instruct (GGUF, llama.cpp)"


@dataclass(frozen=True)
class ModelChoice:
    """One thing a user can chat with: a base model, a base + adapter, or a GGUF file."""

    kind: str
    """"base", "adapter" or "gguf"."""
    model: str = "default"
    """The base model reference (see core.models.resolve); unused for "gguf"."""
    adapter: Path | None = None
    """A PEFT adapter folder (a run's `adapter/`), for kind "adapter"."""
    gguf: Path | None = None
    """A GGUF file, for kind "gguf"."""
    label: str = ""
    """What the model picker shows."""
    id: str = ""
    """A short stable name: the API's `model` field and the picker's value."""
    documents: str = ""
    """A document collection every answer is grounded in ("" for none); see core.documents.grounding."""


def default_choice() -> ModelChoice:
    from core.models import packaged_gguf

    return ModelChoice(kind="gguf", gguf=packaged_gguf(), label=DEFAULT_GGUF_LABEL, id="default")


def list_choices(workspace: Workspace) -> list[ModelChoice]:
    """The default model (GGUF and transformers), other local or Hub-cached bases, every run's adapter,
    every exported GGUF."""
    from core.train import runs  # the one module that knows run folders; imported late to start fast

    choices = [default_choice(), ModelChoice(kind="base", model="default", id="default-transformers",
                                             label=f"Default model · {DEFAULT_MODEL} (transformers)")]
    for config in sorted(workspace.models.glob("*/config.json")):
        if config.parent.name != DEFAULT_MODEL:
            choices.append(ModelChoice(kind="base", model=str(config.parent), id=f"base/{config.parent.name}",
                                       label=f"Base · {config.parent.name} (transformers)"))
    for repo in _cached_hub_models():
        choices.append(ModelChoice(kind="base", model=repo, id=f"hub/{repo}", label=f"Hub · {repo} (transformers)"))
    for adapter in runs.saved_adapters(workspace):
        run = adapter.parent.name
        choices.append(ModelChoice(kind="adapter", model=adapter_base(adapter / "adapter_config.json", workspace),
                                   adapter=adapter, id=f"run/{run}", label=f"Run {run} · adapter"))
    for path in sorted(workspace.exports.rglob("*.gguf")):
        relative = path.relative_to(workspace.exports).as_posix()
        choices.append(ModelChoice(kind="gguf", gguf=path, id=f"gguf/{relative}",
                                   label=f"Export · {relative} (GGUF, llama.cpp)"))
    return choices


def made_signature(workspace: Workspace) -> str:
    """A short text that changes when a run's adapter is saved or a GGUF is exported (or either goes away):
    cheap enough for an open page to poll, so its lists follow jobs that finish while it stays open."""
    from core.train import runs

    adapters = [(adapter.parent.name, _mtime(adapter / runs.ADAPTER_WEIGHTS))
                for adapter in runs.saved_adapters(workspace)]
    ggufs = sorted(path.relative_to(workspace.exports).as_posix() for path in workspace.exports.rglob("*.gguf"))
    return json.dumps([adapters, ggufs])


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # weights not written yet: the signature changes again once they are
        return 0.0


def _cached_hub_models() -> list[str]:
    """Models already in the Hugging Face cache with safetensors weights: usable offline."""
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir()
    except Exception:  # no cache folder yet, or an unreadable one: nothing to offer
        return []
    return sorted(repo.repo_id for repo in cache.repos if repo.repo_type == "model" and any(
        file.file_name.endswith(".safetensors") for revision in repo.revisions for file in revision.files))


def adapter_base(config: Path, workspace: Workspace) -> str:
    """The base an adapter was trained on, mapped to "default" when it is the default model."""
    try:
        base = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or "default"
    except (OSError, ValueError):
        return "default"
    default_dir = (workspace.models / DEFAULT_MODEL).resolve()
    if base in DEFAULT_ALIASES or base.endswith(f"/{DEFAULT_MODEL}") or Path(base).resolve() == default_dir:
        return "default"
    return base


def add_model_arguments(parser) -> None:
    """`--model / --adapter / --gguf`, shared by the terminal chat and the standalone API."""
    parser.add_argument("--model", default="default", help="base model: 'default', a folder or a Hub id")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--adapter", help="a PEFT adapter folder (a run's adapter/) on top of --model")
    group.add_argument("--gguf", help="a GGUF file, run through llama.cpp")


def choice_from_arguments(args, workspace: Workspace) -> ModelChoice:
    """What `--model/--adapter/--gguf` name; an adapter's base comes from its adapter_config.json
    unless --model names another."""
    model, adapter, gguf = args.model, args.adapter, args.gguf
    if gguf:
        return ModelChoice(kind="gguf", gguf=Path(gguf).expanduser().resolve(), id=Path(gguf).stem, label=gguf)
    if adapter:
        folder = Path(adapter).expanduser().resolve()
        if not (folder / "adapter_config.json").is_file():
            raise BadInputError(f"{folder} has no adapter_config.json.", "Pass a run's adapter/ folder.")
        base = adapter_base(folder / "adapter_config.json", workspace) if model == "default" else model
        name = folder.parent.name if folder.name == "adapter" else folder.name
        return ModelChoice(kind="adapter", model=base, adapter=folder, id=name, label=f"{base} + {name}")
    if model in ("default", ""):
        return default_choice()
    return ModelChoice(kind="base", model=model, id=Path(model).name or model, label=model)
