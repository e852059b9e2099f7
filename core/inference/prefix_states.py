"""Saved llama.cpp context states of recent conversations, so each resumes where it left off.

Every chat turn re-sends the whole history. One llama.cpp context already skips the prefix it shares with
the tokens it evaluated last (llama-cpp-python's `generate`), so a lone conversation pays only for its new
tokens; but a second conversation on the same model overwrites that context, and the first one's next
turn then re-reads its whole history. `PrefixStates.resume(llama, tokens)`, called before each
generation, first saves the live context when the new prompt would throw much of it away, then loads the
saved state that shares the longest prefix with the new prompt when that beats the live one.

Why not llama-cpp-python's `LlamaRAMCache`: it saves a state after every answer, and its states carry
the logits of a whole batch (batch × vocabulary floats: 100 MB for the default model) that the next
decode recomputes anyway. Here a state is saved only when a conversation is about to be overwritten,
and holds the KV cache and the evaluated token ids only.
"""

from __future__ import annotations

from collections import OrderedDict

MIN_SAVED_TOKENS = 64
"""A live context is saved only if the new prompt would drop at least this many of its tokens: the
same conversation's next turn drops a few (its last answer re-tokenized), another conversation most."""


def shared_prefix(a, b) -> int:
    """How many leading token ids `a` and `b` have in common."""
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


class PrefixStates:
    """A bounded, least-recently-used store of context states keyed by the tokens they evaluated."""

    def __init__(self, capacity_bytes: int):
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], object] = OrderedDict()  # least recent first

    def __len__(self) -> int:
        return len(self._states)

    def resume(self, llama, tokens: list[int]) -> int:
        """Make `llama`'s context the best known start for `tokens`; returns the prefix it holds."""
        live = [int(token) for token in llama.input_ids[:llama.n_tokens]]
        kept = shared_prefix(live, tokens)
        if len(live) - kept >= MIN_SAVED_TOKENS:
            self._save(llama, tuple(live))
        best, best_shared = None, kept
        for key in self._states:
            shared = shared_prefix(key, tokens)
            if shared > best_shared:
                best, best_shared = key, shared
        if best is not None:
            llama.load_state(self._states[best])
            self._states.move_to_end(best)
        return best_shared

    def _save(self, llama, key: tuple[int, ...]) -> None:
        import ctypes

        import llama_cpp
        import numpy as np

        size = llama_cpp.llama_state_get_size(llama.ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(llama.ctx, buffer, size)
        # One row of logits: `load_state` broadcasts it, and the decode after a load replays a token anyway.
        state = llama_cpp.llama.LlamaState(
            input_ids=llama.input_ids.copy(), scores=np.zeros((1, llama.n_vocab()), dtype=np.single),
            n_tokens=len(key), llama_state=bytes(memoryview(buffer)[:written]), llama_state_size=written, seed=0)
        for older in [k for k in self._states if shared_prefix(k, key) >= len(k) - MIN_SAVED_TOKENS]:
            del self._states[older]  # an earlier turn of the same conversation: the new state covers it
        self._states[key] = state
        while sum(s.llama_state_size for s in self._states.values()) > self.capacity_bytes:
            self._states.popitem(last=False)
