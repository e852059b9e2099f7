"""A GGUF through llama-cpp-python: mmap on, threads from the free cores, the GGUF's own chat template.

The prompt is rendered by `core.templates` from the GGUF's `tokenizer.chat_template` (the same text the
transformers backend builds) and decoded with `create_completion`. A conversation's next turn evaluates
only its new tokens: llama.cpp keeps the prefix it shares with the last prompt, and `PrefixStates` keeps
that prefix for several conversations taking turns on one model. llama.cpp stops at the vocabulary's
end-of-generation tokens (ChatML `<|im_end|>` for the default model); the eos text is also a stop string
for GGUFs whose vocabulary does not mark it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from core.errors import ChatsmithError
from core.inference import MAX_CONTEXT, GenerationSettings, default_threads, render_prompt
from core.inference.prefix_states import PrefixStates
from core.models import verify_gguf
from core import templates

SAVED_STATES_BYTES = 256 << 20
"""Memory for the saved states of conversations that share the model (KV cache: about 23 kB a token for the
default model, so some 10 000 tokens of other people's history)."""


class LlamaCppBackend:
    def __init__(self, gguf_path: Path, n_ctx: int = MAX_CONTEXT):
        from llama_cpp import Llama

        verify_gguf(gguf_path)
        self.path = Path(gguf_path)
        self._llama = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=default_threads(),
                            use_mmap=True, verbose=False)
        self.context_length = self._llama.n_ctx()
        self.template = self._llama.metadata.get("tokenizer.chat_template")
        self.bos = self._token_text(self._llama.token_bos())
        self.eos = self._token_text(self._llama.token_eos())
        if self.template:
            templates.check(self.template, self.bos, self.eos)  # refuse a hostile template at load, before it runs
        self._lock = threading.Lock()  # one llama context cannot decode two streams at once
        self._states = PrefixStates(SAVED_STATES_BYTES)  # several conversations each keep their prefix

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

        with self._lock:
            self._states.resume(self._model(), tokens)
            chunks = self._model().create_completion(
                prompt=tokens, stream=True, max_tokens=settings.max_new_tokens,
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                repeat_penalty=settings.repetition_penalty, seed=settings.seed,
                stop=[self.eos] if self.eos else None,
                stopping_criteria=StoppingCriteriaList([stop_requested]),
            )
            try:
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    counted["finish"] = choice.get("finish_reason") or counted["finish"]
                    if choice["text"]:
                        yield choice["text"]
            finally:
                chunks.close()
                if usage is not None:
                    usage.update(prompt_tokens=len(tokens), completion_tokens=counted["completion"])
                    if counted["finish"] and not stop.is_set():  # llama.cpp knows: "length" or "stop"
                        usage["finish_reason"] = counted["finish"]

    def close(self) -> None:
        """Free the model; waits for a generation in progress (the cache may evict at any time)."""
        with self._lock:
            if self._llama is not None:
                self._llama.close()
                self._llama = None

    def _model(self):
        if self._llama is None:
            raise ChatsmithError(f"{self.path.name} was unloaded to free memory while this request waited.",
                                 "Send the message again; the model loads anew.")
        return self._llama

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._model().detokenize([token], special=True).decode("utf-8", errors="ignore")
