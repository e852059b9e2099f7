"""Chat backends behind one interface: `stream(messages, settings, stop=None, usage=None) -> Iterator[str]`.

`messages` are in the canonical format (`{"role", "content"}` dicts). Both backends render the model's
own chat template through `core.templates` (sandboxed, time-bounded), so the same messages give the
same prompt text in both, and both stop at the model's end-of-turn token. `stop` (a threading.Event)
ends a generation early; `usage`, if given, is filled with prompt and completion token counts (the
end-of-turn token counted) and `finish_reason`: "length" when max_new_tokens cut the answer, else "stop".

* transformers: a base model, or base + adapter. One base stays loaded; adapters are added to it with
  PEFT's `load_adapter` and picked per request with `set_adapter`, so switching never reloads the base.
* llama-cpp-python: any GGUF, mmap on, threads from the free cores.

`list_choices(workspace)` is everything a user can chat with (`core.inference.choices`, re-exported here);
`open_backend(choice, workspace)` returns a cached backend for one of them (a bounded cache:
`core.inference.cache`).
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core import templates
from core.errors import BadInputError
from core.inference.cache import BackendCache
from core.inference.choices import (DEFAULT_GGUF_LABEL, ModelChoice, adapter_base, add_model_arguments,  # noqa: F401
                                    choice_from_arguments, default_choice, list_choices)
from core.workspace import Workspace

MAX_CONTEXT = 4096  # KV-cache memory grows with it; chats here rarely need more


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    """Upper bound on the answer's length in tokens."""
    temperature: float = 0.7
    """0 is greedy (deterministic); higher is more varied."""
    top_p: float = 0.9
    """Sample only from the smallest set of tokens whose probabilities add up to this."""
    top_k: int = 40
    """Sample only from this many most likely tokens (0 = no limit)."""
    repetition_penalty: float = 1.1
    """Above 1 discourages repeating tokens already in the text; 1 = off."""
    seed: int = 0
    """Random seed for sampling, so an answer can be reproduced."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 8192:
            raise BadInputError("max_new_tokens must be between 1 and 8192.")
        if not 0.0 <= self.temperature <= 2.0:
            raise BadInputError("temperature must be between 0 and 2.")
        if not 0.0 < self.top_p <= 1.0:
            raise BadInputError("top_p must be in (0, 1].")
        if not 0 <= self.top_k <= 1000:
            raise BadInputError("top_k must be between 0 and 1000 (0 = no limit).")
        if not 0.5 <= self.repetition_penalty <= 2.0:
            raise BadInputError("repetition_penalty must be between 0.5 and 2 (1 = off).")
        if not 0 <= self.seed < 2**31:
            raise BadInputError("seed must be between 0 and 2147483647.")


# ---- opening backends ---------------------------------------------------------------------------

def open_backend(choice: ModelChoice, workspace: Workspace, progress: Callable | None = None):
    """A cached backend for `choice`, with `stream`, `count_tokens` and `context_length`."""
    if choice.documents:  # the same model, answering from a document collection
        from core.documents.grounding import grounded

        plain = open_backend(dataclasses.replace(choice, documents=""), workspace, progress)
        return grounded(plain, choice.documents, workspace)
    if choice.kind == "gguf":
        return gguf_backend(choice.gguf)
    if choice.kind not in ("base", "adapter"):
        raise BadInputError(f"Unknown model kind '{choice.kind}'.", "Use base, adapter or gguf.")
    from core import models
    from core.inference.transformers_engine import base_in_4bit

    folder = models.resolve(choice.model, workspace, progress=progress)
    adapter = choice.adapter if choice.kind == "adapter" else None
    return AdapterView(transformers_backend(folder, in_4bit=base_in_4bit(adapter)), adapter)


_backends = BackendCache()


def gguf_backend(path: Path) -> "LlamaCppBackend":
    from core.inference.llama_cpp_engine import LlamaCppBackend

    path = Path(path).resolve()
    return _backends.get(("gguf", path), lambda: LlamaCppBackend(path), _size(path))


def transformers_backend(folder: Path, in_4bit: bool = False) -> "TransformersBackend":
    from core.inference.transformers_engine import TransformersBackend

    folder = Path(folder).resolve()
    # fp32 in memory: up to twice a 16-bit checkpoint (a 4-bit base holds less: the bound stays safe).
    # One base at a time, 4-bit or not: each holds all its weights.
    return _backends.get(("hf-nf4" if in_4bit else "hf", folder), lambda: TransformersBackend(folder, in_4bit=in_4bit),
                         2 * sum(_size(file) for file in folder.glob("*.safetensors")),
                         evict_also=lambda other: other[0].startswith("hf"))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # a missing file fails in the loader, with its own message
        return 0


@atexit.register
def _close_backends() -> None:
    # Left to __del__ at interpreter exit, llama-cpp-python finds its C bindings already gone and
    # prints a traceback; closing first frees the model cleanly.
    _backends.close_all()


class AdapterView:
    """A transformers base seen with one adapter active (or none): what `open_backend` hands out."""

    def __init__(self, base, adapter: Path | None):
        self.base = base
        self.adapter = Path(adapter).resolve() if adapter else None
        if self.adapter:
            base.add_adapter(self.adapter)
        self.context_length = base.context_length

    def stream(self, messages: list[dict], settings: GenerationSettings,
               stop: threading.Event | None = None, usage: dict | None = None) -> Iterator[str]:
        return self.base.stream(messages, settings, stop=stop, usage=usage, adapter=self.adapter)

    def count_tokens(self, messages: list[dict]) -> int:
        return self.base.count_tokens(messages)


def default_threads() -> int:
    """Threads for decoding: $CHATSMITH_THREADS, else the cores not busy right now (on a loaded 2-core box,
    1 thread decoded faster than 2)."""
    if os.environ.get("CHATSMITH_THREADS", "").isdigit():
        return max(1, int(os.environ["CHATSMITH_THREADS"]))
    try:
        import psutil

        busy = psutil.cpu_percent(interval=0.1) / 100 * (os.cpu_count() or 1)
        return max(1, round((os.cpu_count() or 1) - busy))
    except Exception:  # psutil missing or sandboxed /proc
        return max(1, (os.cpu_count() or 2) // 2)


# ---- context window -----------------------------------------------------------------------------

def fit_context(backend, messages: list[dict], settings: GenerationSettings) -> tuple[list[dict], int]:
    """Drop the oldest turns until prompt + answer fit the context; keeps system messages.

    Returns the messages to send and how many were dropped, so the caller can tell the user. Turns go
    oldest first, a whole exchange (a user turn and its answer) at a time. The prompt only shrinks as
    turns go, so the cut is found by bisection over the places it may fall: O(log n) renderings instead
    of one per dropped exchange, which made a long history cost the square of its length.
    """
    budget = backend.context_length - settings.max_new_tokens
    system = [m for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    starts = _cut_points(turns)

    def fits(index: int) -> bool:
        return backend.count_tokens(system + turns[starts[index]:]) <= budget

    if fits(0):
        return system + turns, 0
    if not fits(len(starts) - 1):
        raise BadInputError(
            f"The message is too long for this model's context window ({backend.context_length} "
            f"tokens, {settings.max_new_tokens} kept for the answer).",
            "Shorten the message or the system prompt, or lower max new tokens.")
    too_long, fitting = 0, len(starts) - 1
    while fitting - too_long > 1:
        middle = (too_long + fitting) // 2
        too_long, fitting = (too_long, middle) if fits(middle) else (middle, fitting)
    return system + turns[starts[fitting]:], starts[fitting]


def _cut_points(turns: list[dict]) -> list[int]:
    """Where the history may start: 0, then after each oldest exchange, down to the last turn alone."""
    points, start = [0], 0
    while len(turns) - start > 1:
        whole_exchange = len(turns) - start > 2 and turns[start + 1]["role"] == "assistant"
        start += 2 if whole_exchange else 1
        points.append(start)
    return points


def render_prompt(template: str | None, messages: list[dict], bos: str, eos: str, where: str) -> str:
    if not template:
        raise BadInputError(f"{where} has no chat template, so its chat format is unknown.",
                            "Export it again with its tokenizer's chat template, or pick another model.")
    return templates.render(template, messages, bos_token=bos, eos_token=eos)
