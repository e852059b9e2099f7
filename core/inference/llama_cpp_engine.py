"""A GGUF through llama-cpp-python: mmap on, threads from the free cores, the GGUF's own chat template.

The prompt is rendered by `core.templates` from the GGUF's `tokenizer.chat_template` (the same text the
transformers backend builds) and decoded with `create_completion`. A conversation's next turn evaluates
only its new tokens: llama.cpp keeps the prefix it shares with the last prompt, and `PrefixStates` keeps
that prefix for several conversations taking turns on one model. llama.cpp stops at the vocabulary's
end-of-generation tokens (ChatML `<|im_end|>` for the default model); the eos text is also a stop string
for GGUFs whose vocabulary does not mark it.

**Slots: several answers at once.** One llama.cpp context holds one conversation's KV cache, so with one
context a client waits through every answer ahead of it. A GGUF gets up to `chat_slots()` contexts, each a
`Llama` over the same memory-mapped file (the weights are in memory once; a context adds its KV cache and
work buffers, about 100 MB for the default model at 4,096 tokens), opened when a request finds none free
and there is memory for one. The slots' streams decode in turn, one token each, through a lock granted in
arrival order (`Line.turn`): only one context computes at a time, so the cores are never oversubscribed,
and a newcomer's prompt is read after at most one token of each answer in progress instead of after
whole answers. Why not llama.cpp's own parallel sequences in one context (what `llama-server` does):
llama-cpp-python's `Llama` API decodes one sequence per context, and writing its batch loop here would
replace the sampling, stop strings and prefix reuse it already does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import ChatsmithError
from core.inference import MAX_CONTEXT, GenerationSettings, default_threads, render_prompt
from core.inference.gguf_loader import open_llama
from core.inference.prefix_states import PrefixStates, shared_prefix
from core.inference.turns import Line
from core import templates

CHAT_SLOTS = 4
"""Answers one GGUF decodes at once (see "Slots" above); $CHATSMITH_CHAT_SLOTS overrides, 1 turns it off."""

SAVED_STATES_BYTES = 256 << 20
"""Memory for the saved states of conversations that share the model (KV cache: about 23 kB a token for the
default model, so some 10 000 tokens of other people's history)."""


def chat_slots() -> int:
    """How many answers a GGUF may decode at once: $CHATSMITH_CHAT_SLOTS, else `CHAT_SLOTS`."""
    value = os.environ.get("CHATSMITH_CHAT_SLOTS", "")
    return max(1, int(value)) if value.isdigit() else CHAT_SLOTS


class LlamaCppBackend:
    def __init__(self, gguf_path: Path, n_ctx: int = MAX_CONTEXT, slots: int | None = None):
        self.path = Path(gguf_path)
        self.slots = slots or chat_slots()
        self._n_ctx = n_ctx
        first = self._open_context()
        self.context_length = first.n_ctx()
        self.template = first.metadata.get("tokenizer.chat_template")
        self.bos = self._token_text(first, first.token_bos())
        self.eos = self._token_text(first, first.token_eos())
        if self.template:
            templates.check(self.template, self.bos, self.eos)  # refuse a hostile template at load, before it runs
        self._contexts = [first]  # every open context; one decodes one stream at a time
        self._free = [first]
        self._pool = threading.Condition()  # guards the two lists; notified when a context is given back
        self._turns = Line()  # the slots' streams decode one token each in turn, in the order they asked
        self._states = PrefixStates(SAVED_STATES_BYTES)  # several conversations each keep their prefix

    @property
    def _llama(self):
        """The first context: tokenizing, metadata, and the benches' look inside llama.cpp."""
        return self._model()

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        prompt = render_prompt(self.template, messages, self.bos, self.eos, self.path.name)
        # The template writes any BOS itself, as transformers' apply_chat_template assumes.
        return self._model().tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, messages: list[dict]) -> int:
        return len(self.prompt_tokens(messages))

    def stream(self, messages: list[dict], settings: GenerationSettings,
               stop: threading.Event | None = None, usage: dict | None = None) -> Iterator[str]:
        from llama_cpp import StoppingCriteriaList

        tokens = self.prompt_tokens(messages)
        stop = stop or threading.Event()
        counted = {"completion": 0, "finish": None}

        def stop_requested(ids, logits) -> bool:
            # `ids` are the tokens evaluated so far: the one just sampled is not among them yet.
            counted["completion"] = len(ids) - len(tokens) + 1
            return stop.is_set()

        with self._context(tokens, stop) as llama:
            if llama is None:  # stopped (the client left, or its time ran out) while every slot was busy
                return
            with self._turns.turn():
                self._states.resume(llama, tokens)
            chunks = llama.create_completion(
                prompt=tokens, stream=True, max_tokens=settings.max_new_tokens,
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                repeat_penalty=settings.repetition_penalty, seed=settings.seed,
                stop=[self.eos] if self.eos else None,
                stopping_criteria=StoppingCriteriaList([stop_requested]),
            )
            try:
                while True:
                    with self._turns.turn():  # the first turn reads the prompt, each later one decodes a token
                        chunk = next(chunks, None)
                    if chunk is None:
                        break
                    choice = chunk["choices"][0]
                    counted["finish"] = choice.get("finish_reason") or counted["finish"]
                    if choice["text"]:
                        yield choice["text"]  # outside the turn: a slow reader holds its slot, not the others
            finally:
                chunks.close()
                if usage is not None:
                    usage.update(prompt_tokens=len(tokens), completion_tokens=counted["completion"])
                    if counted["finish"] and not stop.is_set():  # llama.cpp knows: "length" or "stop"
                        usage["finish_reason"] = counted["finish"]

    def close(self) -> None:
        """Free the model; waits for generations in progress (the cache may evict at any time)."""
        with self._pool:
            self._pool.wait_for(lambda: len(self._free) == len(self._contexts))
            for llama in self._contexts:
                llama.close()
            self._contexts, self._free = [], []
            self._pool.notify_all()  # requests waiting for a slot learn that the model is gone

    @contextmanager
    def _context(self, tokens: list[int], stop: threading.Event) -> Iterator[object]:
        """A free context for `tokens`, preferring the one that holds most of their prefix (the same
        conversation's last turn); opens another while there are fewer than `slots` and memory for one.
        None if `stop` is set before one is free."""
        with self._pool:
            while not self._free:
                self._model()  # unloaded while waiting: say so
                if stop.is_set():
                    break
                if len(self._contexts) < self.slots and self._room_for_another():
                    self._contexts.append(self._open_context())
                    self._free.append(self._contexts[-1])
                else:
                    self._pool.wait(timeout=0.25)  # and look at `stop` again
            if not self._free:
                yield None
                return
            llama = max(self._free, key=lambda free: shared_prefix(free.input_ids[:free.n_tokens], tokens))
            self._free.remove(llama)
        try:
            yield llama
        finally:
            with self._pool:
                if llama in self._contexts:
                    self._free.append(llama)
                self._pool.notify_all()

    def _open_context(self):
        return open_llama(self.path, n_ctx=self._n_ctx, n_threads=default_threads(), use_mmap=True, verbose=False)

    def _room_for_another(self) -> bool:
        """Whether another context fits: its KV cache at full length, plus the file's size in case llama.cpp
        copies weights it repacks for this CPU, must be free."""
        import psutil

        meta, arch = self._contexts[0].metadata, self._contexts[0].metadata.get("general.architecture", "")
        layers = int(meta.get(f"{arch}.block_count", 32))
        width = int(meta.get(f"{arch}.embedding_length", 4096))
        heads = int(meta.get(f"{arch}.attention.head_count", 1))
        kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))  # absent: one per query head
        kv_bytes = 2 * layers * self._n_ctx * (width * kv_heads // heads) * 2  # keys and values, f16
        return psutil.virtual_memory().available > kv_bytes + self.path.stat().st_size

    def _model(self):
        if not self._contexts:
            raise ChatsmithError(f"{self.path.name} was unloaded to free memory while this request waited.",
                                 "Send the message again; the model loads anew.")
        return self._contexts[0]

    @staticmethod
    def _token_text(llama, token: int) -> str:
        if token < 0:
            return ""
        return llama.detokenize([token], special=True).decode("utf-8", errors="ignore")
