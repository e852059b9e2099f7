"""Chat backends behind one interface: `stream(messages, settings) -> Iterator[str]`.

`messages` are in the canonical format (`{"role", "content"}` dicts); each backend applies the model's
own chat template and stops at its end-of-turn token. The llama.cpp backend serves any GGUF, including
the default model's packaged one. Loaded backends are cached per file so switching back is instant.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.errors import BadInputError
from core.models import verify_gguf
from core.workspace import Workspace


@dataclass(frozen=True)
class ModelChoice:
    """One thing a user can chat with: a base model, a base + adapter, or a GGUF file."""

    kind: str
    """"base", "adapter" or "gguf"."""
    model: str = "default"
    """The base model reference (see core.models.resolve); unused for "gguf"."""
    adapter: Path | None = None
    """A PEFT adapter folder (a run's `adapter/`), for kind "adapter"."""
    gguf: Path | None = None
    """A GGUF file, for kind "gguf"."""
    label: str = ""
    """What the model picker shows."""


def default_choice() -> ModelChoice:
    from core.models import packaged_gguf

    return ModelChoice(kind="gguf", gguf=packaged_gguf(),
                       label="Default model · SmolLM2-135M-Instruct (GGUF, llama.cpp)")


def open_backend(choice: ModelChoice, workspace: Workspace):
    """A cached backend for `choice`, with a `stream(messages, settings)` method."""
    if choice.kind == "gguf":
        return gguf_backend(choice.gguf)
    raise NotImplementedError("transformers backend: see issue 6")


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    """Upper bound on the answer's length in tokens."""
    temperature: float = 0.7
    """0 is greedy (deterministic); higher is more varied."""
    top_p: float = 0.9
    top_k: int = 40
    repetition_penalty: float = 1.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 8192:
            raise BadInputError("max_new_tokens must be between 1 and 8192.")
        if not 0.0 <= self.temperature <= 2.0:
            raise BadInputError("temperature must be between 0 and 2.")
        if not 0.0 < self.top_p <= 1.0:
            raise BadInputError("top_p must be in (0, 1].")


class LlamaCppBackend:
    """A GGUF through llama-cpp-python: mmap on, threads from the free cores."""

    def __init__(self, gguf_path: Path, n_ctx: int = 2048):
        from llama_cpp import Llama

        verify_gguf(gguf_path)
        self.path = gguf_path
        self.n_ctx = n_ctx
        self._llama = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=default_threads(),
                            use_mmap=True, verbose=False)
        self._lock = threading.Lock()  # one llama context cannot decode two streams at once

    def stream(self, messages: list[dict], settings: GenerationSettings) -> Iterator[str]:
        with self._lock:
            chunks = self._llama.create_chat_completion(
                messages=messages, stream=True, max_tokens=settings.max_new_tokens,
                temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                repeat_penalty=settings.repetition_penalty, seed=settings.seed,
            )
            for chunk in chunks:
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield text


def default_threads() -> int:
    """Threads for decoding: the cores not busy right now (STACK: 1 beat 2 on a loaded 2-core box)."""
    try:
        import psutil

        busy = psutil.cpu_percent(interval=0.1) / 100 * (os.cpu_count() or 1)
        return max(1, round((os.cpu_count() or 1) - busy))
    except Exception:  # psutil missing or sandboxed /proc
        return max(1, (os.cpu_count() or 2) // 2)


_backends: dict[Path, LlamaCppBackend] = {}
_backends_lock = threading.Lock()


def gguf_backend(path: Path) -> LlamaCppBackend:
    path = Path(path).resolve()
    with _backends_lock:
        if path not in _backends:
            _backends[path] = LlamaCppBackend(path)
        return _backends[path]
