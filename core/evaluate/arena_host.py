"""The workspace's arena as the app holds it: opened at start-up, its Hub votes restored in the background.

Contract: `ArenaHost(workspace)` opens the ratings database at once (local and fast; a corrupt one is set
aside, see `Arena`), and `start()` runs `hub_votes.start` (restore from the Hub dataset, then mirror) in a
daemon thread, so building the page never waits on the network. Until it ends `restoring` is true and
`notice()` says so; `wait(timeout)` blocks until it has ended. Votes cast meanwhile land in the database and
the log as usual: the restore adds only what the database lacks. With no votes dataset configured there
is nothing to wait for, and `start()` finishes before it returns.
"""

from __future__ import annotations

import logging
import os
import threading

from core.evaluate import hub_votes
from core.evaluate.arena import Arena, RateLimit
from core.workspace import Workspace

RESTORING = "⏳ Restoring the votes from the Hub dataset…; the leaderboard updates once they are in."
log = logging.getLogger(__name__)


class ArenaHost:
    """One arena per app, shared by every page; thread-safe like `Arena` itself."""

    def __init__(self, workspace: Workspace, rate_limit: RateLimit | None = None) -> None:
        self.arena = Arena(workspace.ratings_db, rate_limit or RateLimit.from_env(),
                           vote_log=workspace.root / "votes" / "votes.jsonl")
        self.mirror: hub_votes.MirrorStatus | None = None
        """What the restore and mirror did; None until `start`'s work has ended."""
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> "ArenaHost":
        """Restore and mirror in the background (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None or self._done.is_set():
                return self
            if not os.environ.get(hub_votes.REPO_ENV, "").strip():  # nothing on the network to wait for
                self._restore()
                return self
            self._thread = threading.Thread(target=self._restore, daemon=True, name="arena-hub-votes")
            self._thread.start()
        return self

    def _restore(self) -> None:
        try:
            self.mirror = hub_votes.start(self.arena)  # never raises by contract; a bug must still end the wait
        except Exception:
            log.exception("Restoring the arena's votes from the Hub failed")
            self.mirror = hub_votes.MirrorStatus(os.environ.get(hub_votes.REPO_ENV, "").strip(),
                                                 warnings=("Restoring the votes failed; see the app's log.",))
        finally:
            self._done.set()

    @property
    def restoring(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the restore has ended (at once when it was never started in the background)."""
        return self._thread is None or self._done.wait(timeout)

    def notice(self) -> str:
        """The line the Evaluate tab shows about the votes' Hub mirror ("" when there is nothing to say)."""
        if self.restoring:
            return RESTORING
        return self.mirror.text() if self.mirror else ""
