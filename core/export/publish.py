"""Pushing a run's exports: which folder each export lives in, its model card, then `hub.push_folder`.

Shared by the tab and the CLI so both push the same files. Merged and GGUF folders get their model card
(`README.md`) written just before the push; the adapter package already has one; backups always go to
a private repository.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core import atomic
from core.errors import BadInputError
from core.export import hub
from core.export.package import model_card
from core.export.run import open_run
from core.workspace import Workspace

WHAT = ("adapter", "merged", "gguf", "space", "backup")


def export_folder(workspace: Workspace, run_name: str, what: str, space_target: str = "cpu") -> Path:
    exports = workspace.exports / run_name
    folders = {"adapter": exports / "package", "merged": exports / "merged", "gguf": exports / "gguf",
               "space": exports / f"space-{space_target}", "backup": exports / "backup"}
    if what not in folders:
        raise BadInputError(f"Cannot push '{what}'.", f"Pick one of {', '.join(WHAT)}.")
    return folders[what]


def push_run(workspace: Workspace, run_name: str, what: str, repo_id: str, token: str, private: bool = True,
             space_target: str = "cpu", folder: Path | None = None,
             log: Callable[[str], None] = print) -> str:
    """Push one export of a run; returns the repository URL."""
    run = open_run(workspace, run_name)
    folder = Path(folder) if folder else export_folder(workspace, run.name, what, space_target)
    if not folder.is_dir():
        raise BadInputError(f"Nothing to push yet: {folder} does not exist.", f"Build the {what} export first.")
    target = hub.PushTarget(repo_id.strip(), repo_type="space" if what == "space" else "model",
                            private=private or what == "backup", space_target=space_target)
    if what in ("merged", "gguf"):
        atomic.write_text(folder / "README.md", model_card(run, what))
    return hub.push_folder(folder, target, token, log=log)
