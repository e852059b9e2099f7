"""Starting a training run: the one way every caller starts or resumes one.

The Train tab (Start, Resume, the queue), `python -m core.train`, the guided journey and "improve from
your votes" all call `start_run`, for SFT, DPO and KTO alike, so a new method plugs in here once.

Contract: `start_run(workspace, jobs, settings, ...)` first checks what can be checked before anything is
written: that the method and precision are offered on this machine and the device can run them (when the
caller passes `capabilities` / `device`), that the dataset loads (and, for DPO / KTO, the adapter to start
from exists), and that there is room for a run. Only then does it make the run folder (a fresh one named
`name` or after the time, model and dataset; or the given `folder`), write `config.yaml` and submit
`core.train.job:run` as a heavy job. With `resume=True` the run in `folder` continues from its newest
complete checkpoint instead; it refuses, with the reason, a run that cannot continue. Returns the job's
snapshot; its `folder` is the run folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import atomic
from core.devices import Capabilities, DeviceInfo
from core.errors import BadInputError
from core.jobs import JobRunner, JobSnapshot, State
from core.train import runs
from core.train.settings import TrainSettings, check_device, check_offered
from core.workspace import Workspace

TARGET = "core.train.job:run"
RUN_SPACE_BYTES = 300 * 2**20  # an adapter, a few checkpoints and the logs of a small model


def start_run(workspace: Workspace, jobs: JobRunner, settings: TrainSettings, *, name: str = "",
              folder: Path | None = None, resume: bool = False, eta_s: float | None = None,
              price_per_kwh: float = 0.0, currency: str = "", capabilities: Capabilities | None = None,
              device: DeviceInfo | None = None) -> JobSnapshot:
    """Check, make the run folder, write its config and submit the training job (see the module doc)."""
    if resume:
        folder = Path(folder or "")
        check = runs.resume_check(folder, jobs)
        if not check.ok:
            raise BadInputError(f"Cannot resume {folder.name}: {check.reason}", "Start a new run instead.")
    else:
        check_start(workspace, settings, capabilities, device)
        folder = runs.new_run_dir(workspace, settings, name) if folder is None else Path(folder)
    params = run_params(workspace, settings, resume=resume, eta_s=eta_s, price_per_kwh=price_per_kwh,
                        currency=currency)
    job = jobs.submit(folder, TARGET, params, kind="train", title=f"Train {folder.name}", heavy=True)
    if not resume:  # at once, so the run lists with its settings before the worker writes them too
        runs.write_config(folder, settings)
    return job


def check_start(workspace: Workspace, settings: TrainSettings, capabilities: Capabilities | None = None,
                device: DeviceInfo | None = None) -> None:
    """Everything a new run can be refused for, before a run folder exists."""
    if capabilities is not None:
        check_offered(settings, capabilities)  # what this machine is not offered, and why
    if device is not None:
        check_device(settings, device)  # then what it cannot run at all
    if settings.method == "sft":  # a bad dataset fails here, not minutes later in the job
        from core.train import data

        data.load_splits(settings.dataset, settings.eval_share, settings.seed)
    else:
        from core.train import preference_data

        preference_data.load_rows(settings)
        preference_data.start_adapter(settings, workspace)
    atomic.ensure_free_space(workspace.runs, RUN_SPACE_BYTES, "a training run")


def run_params(workspace: Workspace, settings: TrainSettings, *, resume: bool = False, eta_s: float | None = None,
               price_per_kwh: float = 0.0, currency: str = "") -> dict[str, Any]:
    """The job's parameters, as `core.train.job.run` reads them."""
    return {"settings": settings.to_dict(), "workspace": str(workspace.root), "resume": resume, "eta_s": eta_s,
            "price_per_kwh": float(price_per_kwh or 0), "currency": currency or ""}


def should_resume(jobs: JobRunner, folder: Path) -> bool:
    """Whether a run that a guided flow starts again should continue rather than start over: it was
    stopped or interrupted and has a checkpoint to continue from."""
    if not Path(folder).is_dir():
        return False
    return jobs.snapshot(folder).state in (State.STOPPED, State.INTERRUPTED) and runs.resume_check(folder, jobs).ok
