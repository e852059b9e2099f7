"""Loaded chat backends, kept for reuse but bounded: by count and by bytes against the RAM that is free.

Every distinct model asked for (through the API anyone on the page can reach) would otherwise stay
loaded for good. `BackendCache.get(key, load, size_bytes)` returns the cached backend or loads it,
first evicting the least recently used ones while the cache is full (`CacheLimits.max_models`) or the
new model would not fit (`CacheLimits.ram_share` of the free RAM plus what the cache already holds).
An evicted backend is closed before the new one loads (a llama.cpp model frees its memory and mapping);
its `close` waits for a generation in progress to finish, outside the cache's lock so cache hits are not
held up.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class CacheLimits:
    """How many loaded models the app keeps. `from_env` reads `CHATSMITH_MAX_MODELS`."""

    max_models: int = 3
    """Models kept loaded at most: a chat and an arena battle's two contenders fit."""
    ram_share: float = 0.5
    """Loaded models may use at most this share of (free RAM + what they already use)."""

    @classmethod
    def from_env(cls) -> "CacheLimits":
        return cls(max_models=max(1, int(os.environ.get("CHATSMITH_MAX_MODELS", cls.max_models))))


def available_ram() -> int:
    try:
        import psutil

        return psutil.virtual_memory().available
    except Exception:  # psutil missing or a sandboxed /proc: count on the count limit alone
        return 1 << 62


class BackendCache:
    def __init__(self, limits: Callable[[], CacheLimits] = CacheLimits.from_env,
                 free_ram: Callable[[], int] = available_ram):
        self.limits, self.free_ram = limits, free_ram
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()  # least recent first
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], object], size_bytes: int,
            evict_also: Callable[[Hashable], bool] = lambda key: False):
        """The backend for `key`, loading it with `load()` if needed; `evict_also(other_key)` names entries
        to drop whenever something new loads (one transformers base at a time)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]
            evicted = [self._entries.pop(other)[0] for other in list(self._entries) if evict_also(other)]
            evicted += self._make_room(size_bytes)
        for backend in evicted:  # before loading, so the memory is free; each waits for its generation
            _close(backend)
        with self._lock:
            if key not in self._entries:  # another request may have loaded it meanwhile
                self._entries[key] = (load(), size_bytes)
            self._entries.move_to_end(key)
            return self._entries[key][0]

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries)

    def close_all(self) -> None:
        with self._lock:
            backends = [backend for backend, _ in self._entries.values()]
            self._entries.clear()
        for backend in backends:
            _close(backend)

    def _make_room(self, size_bytes: int) -> list:
        limits, held = self.limits(), sum(size for _, size in self._entries.values())
        budget = (self.free_ram() + held) * limits.ram_share
        evicted = []
        while self._entries and (len(self._entries) >= limits.max_models or held + size_bytes > budget):
            backend, size = self._entries.popitem(last=False)[1]
            held -= size
            evicted.append(backend)
        return evicted


def _close(backend) -> None:
    if hasattr(backend, "close"):
        backend.close()
