"""Polling for what a background job or process does next (no tests here)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 120.0, interval: float = 0.2) -> bool:
    """True as soon as `predicate()` is truthy; False after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
