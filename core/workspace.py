"""The one folder that holds everything the app makes: datasets, runs, models, exports and ratings.

Resolution order: an explicit path (`--workspace`), then `$CHATSMITH_WORKSPACE`, then the persistent
`/data` volume on a Hugging Face Space that has one, then `./workspace`. Uploaded originals are copied
into `uploads/` and never modified; every later stage writes new files beside them.

Every name a client sends (a run, a dataset, an export, an upload) becomes a path through one function,
`Workspace.named`, which refuses anything that would lead outside the workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import BadInputError

ENV_VAR = "CHATSMITH_WORKSPACE"
SPACES_PERSISTENT = Path("/data")


@dataclass(frozen=True)
class Workspace:
    root: Path
    locked_reason: str = ""
    """Non-empty when this workspace is served to anyone on a network without a login: then nothing heavy
    is prepared for a caller (the default model is not materialised, no model is downloaded)."""

    @classmethod
    def resolve(cls, explicit: str | os.PathLike | None = None) -> "Workspace":
        if explicit:
            root = Path(explicit)
        elif os.environ.get(ENV_VAR):
            root = Path(os.environ[ENV_VAR])
        elif os.environ.get("SPACE_ID") and _writable(SPACES_PERSISTENT):
            root = SPACES_PERSISTENT / "chatsmith"
        else:
            root = Path("workspace")
        return cls(root.expanduser().resolve()).ensure()

    def ensure(self) -> "Workspace":
        for folder in (self.datasets, self.runs, self.models, self.exports, self.uploads, self.jobs):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def named(self, area: Path, name: str | os.PathLike | None, what: str = "name") -> Path:
        """The path under `area` (one of this workspace's folders) that a client-supplied `name` means.

        Names come from browsers, API callers and archives, so they are untrusted: an empty name, an
        absolute path, a `~`, any `..` part, a name of several parts (a path, not a name), and a name
        whose real location (symlinks followed) lies outside the workspace are refused with `BadInputError`.
        The path need not exist yet.
        """
        text = str(name or "").strip()
        parts = PurePosixPath(text.replace("\\", "/")).parts
        if not parts or text.startswith(("/", "\\", "~")) or Path(text).is_absolute() or len(parts) != 1 \
                or parts[0] in (".", ".."):
            raise BadInputError(f"The {what} '{text}' is not a name inside the workspace.",
                                f"Pick a {what} from the list.")
        path = Path(area) / parts[0]
        real = path.resolve()
        if not real.is_relative_to(self.root.resolve()) or real == Path(area).resolve():
            raise BadInputError(f"The {what} '{text}' leads outside the workspace ({self.root}).",
                                f"Pick a {what} from the list.")
        return path

    @property
    def datasets(self) -> Path:
        """Immutable dataset versions, one folder per content hash."""
        return self.root / "datasets"

    @property
    def runs(self) -> Path:
        """Training runs, one folder each (config, events, checkpoints, adapter, report)."""
        return self.root / "runs"

    @property
    def models(self) -> Path:
        """Base models materialised locally, such as the embedded default model."""
        return self.root / "models"

    @property
    def exports(self) -> Path:
        """Merged models, GGUF files, Space bundles and backups."""
        return self.root / "exports"

    @property
    def uploads(self) -> Path:
        """Copies of files the user uploaded, kept as they came."""
        return self.root / "uploads"

    @property
    def jobs(self) -> Path:
        """Folders of background jobs that belong to no run (evaluation batches, materialisation)."""
        return self.root / "jobs"

    @property
    def documents(self) -> Path:
        """Document collections for chat with documents, one immutable folder per content hash."""
        return self.root / "documents"

    @property
    def ratings_db(self) -> Path:
        """The SQLite database of blind battles and votes."""
        return self.root / "ratings.sqlite"


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)
