"""Load the default chat model in the background once the page is up, so the first question does not
pay for loading it.

`warm_default(workspace)` starts a daemon thread that opens the default model (the packaged GGUF) through
the same bounded cache every chat uses, and returns it; the first answer then finds the model loaded. It
does nothing in a locked workspace (served to a network without a login): there nothing heavy is
prepared unless a caller who may use it asks. A model that fails to load is left to the first question,
which reports the failure with its hint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.errors import ChatsmithError, describe
from core.workspace import Workspace


def warm_default(workspace: Workspace, report: Callable[[str], None] = print) -> threading.Thread | None:
    if workspace.locked_reason:
        return None
    thread = threading.Thread(target=_load_default, args=(workspace, report), daemon=True, name="warm-chat-model")
    thread.start()
    return thread


def _load_default(workspace: Workspace, report: Callable[[str], None]) -> None:
    from core import inference

    started = time.monotonic()
    try:
        inference.open_backend(inference.default_choice(), workspace)
    except ChatsmithError as error:
        report(f"Chat: the default model did not load in the background ({describe(error)}).")
        return
    report(f"Chat: the default model is loaded ({time.monotonic() - started:.1f} s, in the background).")

