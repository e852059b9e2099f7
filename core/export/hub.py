"""Pushes to the Hugging Face Hub with the token passed per call, and errors a person can act on.

The token goes into one `HfApi(token=...)` per push and nowhere else: it is never logged, never part of
an error message (they are scrubbed), never written to disk, and `login()` is never called (Gradio's
advisory about tokens saved on disk has no fixed release yet). `create_repo` and the commit are not
retried by huggingface_hub itself, so 429 and 5xx answers are retried here with a short backoff; 409
(the repository exists) continues; the other answers map to messages that say what to do
(docs/reliability.md, "Hub and tokens"). Offline, nothing is attempted and the local export stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from core import atomic, hub_errors
from core.devices import hub_offline
from core.errors import BadInputError, ChatsmithError, OfflineError
from core.models import HUB_ID

RETRY_DELAYS_S = (2.0, 8.0, 30.0)
"""Waits before each retry of a 429 / 5xx answer; tests shorten them."""
SPACE_HARDWARE = {"cpu": None, "zerogpu": "zero-a10g"}
T = TypeVar("T")


class HubPushError(ChatsmithError):
    """The Hub refused a push; the message says why and what to do."""


@dataclass(frozen=True)
class PushTarget:
    repo_id: str
    """"user/name" of the model or Space repository; created if missing."""
    repo_type: str = "model"
    """"model" or "space"."""
    private: bool = True
    """New repositories are private unless the user switches this off."""
    space_target: str = "cpu"
    """For Spaces: "cpu" (free hardware) or "zerogpu" (needs a PRO account or an organisation)."""

    def __post_init__(self) -> None:
        if not HUB_ID.match(self.repo_id or ""):
            raise BadInputError(f"'{self.repo_id}' is not a Hub repository id.", "Write it as user/name.")
        if self.repo_type not in ("model", "space"):
            raise BadInputError(f"Repository type '{self.repo_type}' must be model or space.")
        if self.space_target not in SPACE_HARDWARE:
            raise BadInputError(f"Space target '{self.space_target}' must be cpu or zerogpu.")

    @property
    def url(self) -> str:
        prefix = "spaces/" if self.repo_type == "space" else ""
        return f"https://huggingface.co/{prefix}{self.repo_id}"


def push_folder(folder: Path, target: PushTarget, token: str, message: str = "Upload from Chatsmith",
                log: Callable[[str], None] = print) -> str:
    """Create the repository (or reuse it) and upload `folder`; return the repository's URL."""
    from huggingface_hub import HfApi

    if not (token or "").strip():
        raise BadInputError("A Hugging Face token with write access is needed to push.",
                            "Paste one from https://huggingface.co/settings/tokens (it is not saved).")
    if hub_offline():
        raise OfflineError(f"Offline (HF_HUB_OFFLINE=1): {target.repo_id} was not pushed; the local files "
                           f"in {folder} are kept.", "Go online and push again.")
    api = HfApi(token=token.strip())
    create = {"repo_type": target.repo_type, "private": target.private, "exist_ok": True}
    if target.repo_type == "space":
        create.update(space_sdk="gradio", space_hardware=SPACE_HARDWARE[target.space_target])
    log(f"Creating or reusing {target.repo_type} {target.repo_id}…")
    _call(lambda: api.create_repo(target.repo_id, **create), target, folder, token, log)
    log(f"Uploading {folder.name}…")
    _call(lambda: api.upload_folder(folder_path=folder, repo_id=target.repo_id, repo_type=target.repo_type,
                                    commit_message=message, ignore_patterns=[atomic.MARKER]),
          target, folder, token, log)
    log(f"Pushed to {target.url}")
    return target.url


def _call(action: Callable[[], T], target: PushTarget, folder: Path, token: str,
          log: Callable[[str], None]) -> T:
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        try:
            return action()
        except Exception as error:  # mapped by core.hub_errors; the token never reaches a message
            code = hub_errors.status(error)
            if code in hub_errors.BUSY and delay is not None:
                log(f"The Hub answered {code}; retrying in {delay:.0f} s ({attempt + 1}/{len(RETRY_DELAYS_S)}).")
                time.sleep(delay)
                continue
            raise hub_errors.hub_error(error, f"Push to {target.repo_id}", token, HubPushError,
                                       keep=f"The local files in {folder} are kept; push again to resume.",
                                       retries=len(RETRY_DELAYS_S)) from None
    raise AssertionError("unreachable")
