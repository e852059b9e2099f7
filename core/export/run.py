"""Reading a training run for export: its settings, its adapter, and where its exports go.

`open_run` accepts a run name (a folder under `workspace.runs`) or a path, and refuses adapters that
would unpickle or whose weights are truncated before anything loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import BadInputError, CorruptFileError, UnsafeModelError
from core.models import PICKLE_SUFFIXES, verify_safetensors
from core.workspace import Workspace

ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class Run:
    """A training run as the Export stage sees it."""

    name: str
    folder: Path
    config: dict[str, Any]
    exports: Path
    """`workspace.exports/<run>/`: every file this stage writes for the run."""

    @property
    def adapter(self) -> Path:
        return self.folder / "adapter"

    @property
    def base_model(self) -> str:
        return str(self.config.get("model") or "default")


def list_runs(workspace: Workspace) -> list[str]:
    """Runs that have a finished adapter, newest first."""
    runs = [path.parent.parent for path in workspace.runs.glob(f"*/adapter/{ADAPTER_WEIGHTS}")]
    return [run.name for run in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def open_run(workspace: Workspace, run: str | Path) -> Run:
    """The run named `run` (or at path `run`), with its adapter checked."""
    # A bare name is always a run of the workspace, even when a folder of that name sits in the cwd; a
    # path (the command line's) is taken as it is.
    bare = len(Path(run).parts) == 1 and str(run) not in (".", "..")
    folder = workspace.named(workspace.runs, run, "run") if bare else Path(run)
    if not folder.is_dir():
        raise BadInputError(f"No run '{run}' in {workspace.runs}.",
                            "Pick a run from the list, or train one in the Train tab.")
    config = read_config(folder)
    result = Run(name=folder.name, folder=folder.resolve(), config=config,
                 exports=workspace.exports / folder.name)
    check_adapter(result.adapter)
    return result


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise CorruptFileError(f"{path} is not valid YAML ({error}).", "Fix or restore it.") from error
    if not isinstance(config, dict):
        raise CorruptFileError(f"{path} does not hold settings (a mapping).", "Fix or restore it.")
    return config


def check_adapter(adapter: Path) -> None:
    """Refuse a missing, pickle-only or truncated adapter before PEFT touches it."""
    if not (adapter / "adapter_config.json").is_file():
        raise BadInputError(f"{adapter} has no adapter_config.json, so it is not a finished PEFT adapter.",
                            "Wait for training to finish, or pick another run.")
    weights = adapter / ADAPTER_WEIGHTS
    if not weights.is_file():
        pickles = sorted(p.name for p in adapter.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise UnsafeModelError(
                f"The adapter in {adapter} is only pickle ({', '.join(pickles)}); loading it could run "
                "arbitrary code, so the app refuses.",
                "Re-save it as safetensors on a trusted machine (save_pretrained(safe_serialization=True)).",
            )
        raise BadInputError(f"{adapter} has no {ADAPTER_WEIGHTS}.", "Pick a finished run.")
    verify_safetensors(weights)
