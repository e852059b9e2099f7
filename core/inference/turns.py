"""First come, first served access to one model, with each waiter's place in line.

A model decodes one answer at a time (one llama.cpp context, one active adapter). A plain lock lets its
waiters in in no set order, so with several clients one can wait through many others' answers, and none
knows why nothing arrives. `Line` hands out the model in the order requests came, and tells each waiter
how many are ahead of it (the API streams that to the client while it waits).

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


class Line:
    def __init__(self):
        self._moved = threading.Condition()
        self._tickets: list[int] = []  # in arrival order; the first one holds the model
        self._numbers = itertools.count()

    def join(self) -> int:
        with self._moved:
            ticket = next(self._numbers)
            self._tickets.append(ticket)
            return ticket

    def ahead(self, ticket: int) -> int:
        """How many requests come before `ticket`: 0 when it is its turn."""
        with self._moved:
            return self._tickets.index(ticket)

    def wait(self, ticket: int, ahead: int, timeout: float) -> int:
        """Wait until fewer than `ahead` are before `ticket`, or `timeout` seconds; returns how many are."""
        with self._moved:
            self._moved.wait_for(lambda: self._tickets.index(ticket) < ahead, timeout)
            return self._tickets.index(ticket)

    def leave(self, ticket: int) -> None:
        """Done, or given up while waiting: the ones behind move up."""
        with self._moved:
            if ticket in self._tickets:
                self._tickets.remove(ticket)
                self._moved.notify_all()

    def __len__(self) -> int:
        with self._moved:
            return len(self._tickets)
