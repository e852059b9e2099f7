"""A training run as the Export stage opens it: its settings, its checked adapter, where its exports go.

The run folder's layout, config and listing belong to `core.train.runs`; this module adds what Export
needs before anything loads an adapter. `open_run` accepts a run name (a folder under `workspace.runs`)
or a path, and refuses adapters that would unpickle (loading them could run code) or whose weights are
truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError, UnsafeModelError
from core.models import PICKLE_SUFFIXES, verify_safetensors
from core.train import runs
from core.train.settings import TrainSettings
from core.workspace import Workspace

@dataclass(frozen=True)
class Run:
    """A training run as the Export stage sees it."""

    name: str
    folder: Path
    settings: TrainSettings
    """The run's `config.yaml`; the defaults (the default model) for an adapter folder made without one."""
    exports: Path
    """`workspace.exports/<run>/`: every file this stage writes for the run."""

    @property
    def adapter(self) -> Path:
        return self.folder / runs.ADAPTER_DIR

    @property
    def base_model(self) -> str:
        return self.settings.model


def open_run(workspace: Workspace, run: str | Path) -> Run:
    """The run named `run` (or at path `run`), with its adapter checked."""
    # A bare name is always a run of the workspace, even when a folder of that name sits in the cwd; a
    # path (the command line's) is taken as it is.
    bare = len(Path(run).parts) == 1 and str(run) not in (".", "..")
    folder = workspace.named(workspace.runs, run, "run") if bare else Path(run)
    if not folder.is_dir():
        raise BadInputError(f"No run '{run}' in {workspace.runs}.",
                            "Pick a run from the list, or train one in the Train tab.")
    result = Run(name=folder.name, folder=folder.resolve(), settings=run_settings(folder),
                 exports=workspace.exports / folder.name)
    check_adapter(result.adapter)
    return result


def run_settings(folder: Path) -> TrainSettings:
    """The run's settings; an adapter folder made outside the app, without a config, is on the default model."""
    return runs.read_config(folder) if (Path(folder) / runs.CONFIG_FILE).is_file() else TrainSettings()


def check_adapter(adapter: Path) -> None:
    """Refuse a missing, pickle-only or truncated adapter before PEFT touches it."""
    if not (adapter / "adapter_config.json").is_file():
        raise BadInputError(f"{adapter} has no adapter_config.json, so it is not a finished PEFT adapter.",
                            "Wait for training to finish, or pick another run.")
    weights = adapter / runs.ADAPTER_WEIGHTS
    if not weights.is_file():
        pickles = sorted(p.name for p in adapter.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise UnsafeModelError(
                f"The adapter in {adapter} is only pickle ({', '.join(pickles)}); loading it could run "
                "arbitrary code, so the app refuses.",
                "Re-save it as safetensors on a trusted machine (save_pretrained(safe_serialization=True)).",
            )
        raise BadInputError(f"{adapter} has no {runs.ADAPTER_WEIGHTS}.", "Pick a finished run.")
    verify_safetensors(weights)
