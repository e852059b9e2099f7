"""First come, first served access to one model, with each waiter's place in line.

A model serves a fixed number of answers at once, its `width`: one for a transformers model (one active
adapter), a GGUF's slots for llama.cpp (`core.inference.llama_cpp_engine`). A plain lock lets its waiters
in in no set order, so with several clients one can wait through many others' answers, and none knows why
nothing arrives. `Line` hands out the model in the order requests came, and tells each waiter how many are
ahead of it (the API streams that to the client while it waits). `turn()` is the same line as a lock
granted in arrival order, which llama.cpp's slots take for each token so that they decode in turn.

    ticket = line.join()
    try:
        ahead = line.ahead(ticket)
        while ahead and not stop.is_set():
            ahead = line.wait(ticket, ahead, timeout=0.25)  # returns early when the line moves
        ...  # its turn: use the model
    finally:
        line.leave(ticket)
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Line:
    def __init__(self, width: int = 1):
        self.width = max(1, width)
        self._moved = threading.Condition()
        self._tickets: list[int] = []  # in arrival order; the first `width` hold the model
        self._numbers = itertools.count()

    def join(self) -> int:
        with self._moved:
            ticket = next(self._numbers)
            self._tickets.append(ticket)
            return ticket

    def ahead(self, ticket: int) -> int:
        """How many requests must finish before `ticket`'s turn: 0 when it is its turn."""
        with self._moved:
            return self._ahead(ticket)

    def wait(self, ticket: int, ahead: int, timeout: float) -> int:
        """Wait until fewer than `ahead` are before `ticket`, or `timeout` seconds; returns how many are."""
        with self._moved:
            self._moved.wait_for(lambda: self._ahead(ticket) < ahead, timeout)
            return self._ahead(ticket)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the model (one of its `width` places) until the block ends, after those who asked first."""
        ticket = self.join()
        try:
            with self._moved:
                self._moved.wait_for(lambda: self._ahead(ticket) == 0)
            yield
        finally:
            self.leave(ticket)

    def _ahead(self, ticket: int) -> int:
        return max(0, self._tickets.index(ticket) - self.width + 1)

    def leave(self, ticket: int) -> None:
        """Done, or given up while waiting: the ones behind move up."""
        with self._moved:
            if ticket in self._tickets:
                self._tickets.remove(ticket)
                self._moved.notify_all()

    def __len__(self) -> int:
        with self._moved:
            return len(self._tickets)
