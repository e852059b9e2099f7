"""The vote log mirrored to a Hugging Face dataset, so a Space restart loses no vote.

Contract: with `CHATSMITH_VOTES_REPO` set (a dataset id) and the Space's `HF_TOKEN` secret, `start` first
restores into the arena's database every vote the dataset holds that the database lacks, then hands the
folder of the append-only vote log to huggingface_hub's `CommitScheduler`, which commits what changed every
few minutes and once more at exit. Each app start uploads under its own `votes/<start id>/` path, so a
fresh Space whose log is empty never overwrites an earlier start's votes; `restore` reads them all, and
the battle id and idempotency key make a re-import add nothing.

Nothing here stops the app from starting: a Hub failure becomes a warning (logged and shown in the tab),
votes keep landing in the local log, and the next start restores and uploads again. The token is read
from the environment per start and passed explicitly; it is never logged, written or put in a message.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from core import hub_errors
from core.devices import hub_offline
from core.errors import ChatsmithError
from core.evaluate.arena import Arena, ImportCount
from core.models import HUB_ID

REPO_ENV = "CHATSMITH_VOTES_REPO"
TOKEN_ENV = "HF_TOKEN"
EVERY_MINUTES = 5.0
"""How often the scheduler commits new votes; a crash loses at most this much from the dataset."""
PATH_IN_REPO = "votes"
KEPT = "Votes are kept locally; the next start tries again."
log = logging.getLogger(__name__)


class HubVotesError(ChatsmithError):
    """The Hub refused or failed a restore or an upload of votes; the message says why."""


@dataclass(frozen=True)
class MirrorStatus:
    """What `start` did, as the Evaluate tab reports it in one line."""

    repo_id: str = ""
    restored: ImportCount | None = None
    """None when the restore failed (see `warnings`)."""
    scheduler: object | None = field(default=None, compare=False)
    """The running `CommitScheduler`, or None when votes are not mirrored."""
    warnings: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.repo_id:
            return ("⚠️ Votes are kept only in this Space's workspace (lost on restart without persistent storage): "
                    "set the `CHATSMITH_VOTES_REPO` variable (a dataset) and the `HF_TOKEN` secret to mirror them."
                    if os.environ.get("SPACE_ID") else "")
        link = f"[{self.repo_id}](https://huggingface.co/datasets/{self.repo_id})"
        parts = [f"Votes are mirrored to the Hub dataset {link} every {EVERY_MINUTES:g} min."
                 if self.scheduler else f"⚠️ Votes are **not** mirrored to the Hub dataset {link}; they are kept "
                 "locally in `votes/votes.jsonl`."]
        if self.restored:
            skipped = f" (malformed lines skipped: {self.restored.malformed})" if self.restored.malformed else ""
            parts.append(f"Votes restored at start: {self.restored.added}{skipped}.")
        return " ".join([*parts, *(f"⚠️ {warning}" for warning in self.warnings)])


def restore(arena: Arena, repo_id: str, token: str) -> ImportCount:
    """Download every vote log in the dataset and import the votes the database lacks.
    A dataset that does not exist yet (the first start) restores nothing."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    api = HfApi(token=token)
    try:
        names = [name for name in api.list_repo_files(repo_id, repo_type="dataset")
                 if name.startswith(f"{PATH_IN_REPO}/") and name.endswith(".jsonl")]
    except Exception as error:
        if isinstance(error, RepositoryNotFoundError) and hub_errors.status(error) == 404:  # not 401
            log.info("The votes dataset %s does not exist yet: nothing to restore.", repo_id)
            return ImportCount()
        raise _translate(error, f"Earlier votes could not be restored from {repo_id}", token) from None
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chatsmith-votes-") as folder:  # gone once read
        for name in sorted(names):
            try:
                path = api.hf_hub_download(repo_id, name, repo_type="dataset", local_dir=folder)
            except Exception as error:
                raise _translate(error, f"Earlier votes could not be restored from {repo_id}", token) from None
            # errors="replace": a bad byte spoils its own line (skipped as malformed), not the whole file
            lines += Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return arena.import_log(lines)


def start_mirror(folder: Path, repo_id: str, token: str, every: float = EVERY_MINUTES):
    """Create the (private) dataset if missing and commit the folder's `*.jsonl` every `every` minutes."""
    from huggingface_hub import CommitScheduler

    start_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    try:
        return CommitScheduler(repo_id=repo_id, repo_type="dataset", folder_path=folder, every=every,
                               path_in_repo=f"{PATH_IN_REPO}/{start_id}", allow_patterns=["*.jsonl"],
                               private=True, token=token)
    except Exception as error:
        raise _translate(error, f"Votes cannot be uploaded to {repo_id}", token) from None


def start(arena: Arena, repo_id: str | None = None) -> MirrorStatus:
    """Restore, then mirror `arena.vote_log`'s folder, as `CHATSMITH_VOTES_REPO` and `HF_TOKEN` say.
    Never raises: each failure is logged and returned as a warning; the app starts either way."""
    repo_id = (repo_id if repo_id is not None else os.environ.get(REPO_ENV, "")).strip()
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not repo_id:
        return MirrorStatus()
    why = _unusable(repo_id, token, arena)
    if why:
        log.warning("Votes are not mirrored to %s: %s", repo_id, why)
        return MirrorStatus(repo_id, warnings=(why,))
    restored = scheduler = None
    warnings = []
    try:
        restored = restore(arena, repo_id, token)
    except ChatsmithError as error:  # the upload below still runs: it never overwrites earlier votes
        warnings.append(str(error))
    try:
        scheduler = start_mirror(arena.vote_log.parent, repo_id, token)
    except ChatsmithError as error:
        warnings.append(str(error))
    for warning in warnings:
        log.warning("%s", warning)
    return MirrorStatus(repo_id, restored, scheduler, tuple(warnings))


def _unusable(repo_id: str, token: str, arena: Arena) -> str:
    if not HUB_ID.match(repo_id):
        return f"{REPO_ENV}='{repo_id}' is not a dataset id; write it as user/name."
    if not token:
        return f"the `{TOKEN_ENV}` secret is not set; add a token with write access in the Space's settings."
    if hub_offline():
        return "the app is offline (HF_HUB_OFFLINE=1)."
    if arena.vote_log is None:
        return "this arena keeps no vote log."
    return ""


def _translate(error: Exception, what: str, token: str) -> ChatsmithError:
    return hub_errors.hub_error(error, what, token, HubVotesError, keep=KEPT,
                                token_advice=f"Give the `{TOKEN_ENV}` secret a token with write access to the dataset.")
