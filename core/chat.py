"""Answering in a conversation: input limits, opening a model, waiting behind a heavy job, one answer loop,
and a terminal chat. (What a chat leaves behind, saved files and training examples: `core.chat_saving`.)

The Chat tab and the terminal share one answer loop: `stream_answer` (system prompt, context cut,
streaming, first-token time and speed); each only shows what it yields in its own way. A conversation is a
list of canonical messages (`{"role", "content"}`).

Terminal chat, the inference script of the seed plan:

    python -m core.chat [--model default|FOLDER|HUB_ID] [--adapter RUN/adapter | --gguf FILE.gguf]

with `/reset`, `/system TEXT` and `/exit`; Ctrl-C stops an answer, Ctrl-D leaves.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from core import inference
from core.errors import BadInputError, ChatsmithError, describe
from core.inference import GenerationSettings
from core.workspace import Workspace

MAX_INPUT_CHARS = 8000
"""Longest message a person may send; longer ones are refused before any tokenizing."""
LOADED_ALREADY_S = 0.1  # opening a loaded (cached) model takes under a millisecond; any longer, it loaded


def check_input(text: str) -> str:
    if len(text) > MAX_INPUT_CHARS:
        raise BadInputError(f"The message has {len(text)} characters; the limit is {MAX_INPUT_CHARS}.",
                            "Shorten it, or split it over several messages.")
    return text


def open_model(choice, workspace: Workspace) -> Generator[str, None, tuple[object, float]]:
    """Open a chat model; returns the backend and the seconds its load took (0 when it was loaded already).

    A model not loaded yet takes seconds, so meanwhile this yields "loading model…" lines with the time
    so far, for the caller to show instead of a bare spinner."""
    opened: dict = {}
    said = {"text": ""}

    def load():
        try:
            opened["backend"] = inference.open_backend(
                choice, workspace, progress=lambda fraction, message: said.update(text=message))
        except Exception as error:  # re-raised below, in the caller's thread
            opened["error"] = error

    started = time.perf_counter()
    worker = threading.Thread(target=load, daemon=True, name="chat-load")
    worker.start()
    while worker.join(0.25) or worker.is_alive():
        yield f"⏳ loading model {choice.label}… {time.perf_counter() - started:.0f} s {said['text']}"
    if "error" in opened:
        raise opened["error"]
    took = time.perf_counter() - started
    return opened["backend"], (took if took > LOADED_ALREADY_S else 0.0)


def fresh_seed() -> int:
    """A sampling seed for one answer when the user fixed none, so each regeneration differs."""
    return 1 + secrets.randbelow(2**31 - 1)  # never 0: the Chat tab reads a seed of 0 as "draw one"


MODEL_MARK = "🤖"


def mark(message: dict, model: str | None) -> dict:
    """An assistant message headed by the model that wrote it (shown when a chat switched models)."""
    if message["role"] != "assistant" or not model:
        return message
    return {**message, "content": f"_{MODEL_MARK} {model}_\n\n{message['content']}"}


def unmark(text: str) -> str:
    """The answer without the heading `mark` put on it (an edited answer comes back with it)."""
    head, separator, rest = text.partition("\n\n")
    return rest if separator and head.startswith(f"_{MODEL_MARK} ") and head.endswith("_") else text


def must_wait(jobs, device_kind: Callable[[], str], choice) -> object | None:
    """The heavy job a chat request must wait for, or None.

    Only a transformers model on an accelerator waits: llama.cpp decodes on the CPU here, and on a
    CPU-only machine waiting behind hours of training would make chat useless, so it runs beside it.
    """
    job = jobs.heavy_job()
    if job is None or choice.kind == "gguf" or device_kind() == "cpu":
        return None
    return job


def wait_for_accelerator(jobs, stop: threading.Event, poll_s: float = 1.0) -> Iterator[str]:
    """While a heavy job holds the accelerator, yield a line saying so; returns when it is free."""
    while (job := jobs.heavy_job()) is not None and not stop.is_set():
        yield f"⏳ Waiting: '{job.title}' is {job.state.value} on the accelerator; your message is queued."
        stop.wait(poll_s)


def memory_text() -> str:
    import psutil

    used = psutil.Process().memory_info().rss / 2**30
    total = psutil.virtual_memory()
    return f"app memory {used:.2f} GiB · free RAM {total.available / 2**30:.1f} of {total.total / 2**30:.1f} GiB"


# ---- one answer -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prompt:
    """What an answer was asked from, yielded before its first piece."""

    messages: list[dict]
    """The system prompt (if any) first, then as much of the conversation as fits the context window."""
    dropped: int
    """How many of the oldest messages were left out to fit."""


@dataclass(frozen=True)
class AnswerStats:
    """How one answer went, yielded after its last piece."""

    first_token_s: float | None
    """Seconds from asking to the first piece; None when no piece came."""
    completion_tokens: int
    """Tokens the model generated, as its backend counted them."""
    tokens_per_s: float
    """Generation speed from the first piece to the end (0 when under two pieces' time)."""
    dropped: int
    """How many of the oldest messages were left out to fit the context window."""
    stopped: bool
    """Whether the stop event was set (by the person, never by a backend) before the answer ended."""


def plain(message: dict) -> dict:
    """A message as a model reads it: role and content, without what a UI keeps beside them."""
    return {"role": message["role"], "content": message["content"]}


def stream_answer(backend, system: str, history: list[dict], settings: GenerationSettings,
                  stop: threading.Event, ground: Callable | None = None) -> Iterator[Prompt | str | AnswerStats]:
    """One answer to the conversation `history`: first the `Prompt`, then the text pieces, then `AnswerStats`.

    The system prompt goes first and the oldest turns are cut to fit the context window, so a prompt that
    cannot fit raises (BadInputError) before the `Prompt` is yielded; an error mid-answer raises after the
    pieces so far, which the caller may keep. `ground`, when given, turns the fitted messages into the
    (backend, messages) to stream instead: how the Chat tab answers from documents. `stop` is handed to
    the backend, which ends the answer early when it is set."""
    system = (system or "").strip()
    prefix = [{"role": "system", "content": system}] if system else []
    messages, dropped = inference.fit_context(backend, prefix + [plain(m) for m in history], settings)
    if ground is not None:
        backend, messages = ground(messages)
    yield Prompt(messages, dropped)
    usage, started, first = {}, time.perf_counter(), None
    for piece in backend.stream(messages, settings, stop=stop, usage=usage):
        first = first or time.perf_counter()
        yield piece
    tokens, ended = usage.get("completion_tokens", 0), time.perf_counter()
    yield AnswerStats(first_token_s=first - started if first else None, completion_tokens=tokens,
                      tokens_per_s=tokens / (ended - first) if first and ended > first else 0.0,
                      dropped=dropped, stopped=stop.is_set())


# ---- terminal -----------------------------------------------------------------------------------

def chat_loop(backend, settings: GenerationSettings, read: Callable[[str], str] = input,
              write: Callable[[str], None] = lambda text: print(text, end="", flush=True)) -> None:
    """Read a line, stream the answer, repeat; `/reset`, `/system TEXT`, `/exit`."""
    system, history = "", []
    write("Type a message. /system TEXT sets the system prompt, /reset clears, /exit leaves.\n")
    while True:
        try:
            line = read("\n> ").strip()
        except (EOFError, KeyboardInterrupt):
            return write("\n")
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            history = []
            write("(conversation cleared)\n")
        elif line.startswith("/system"):
            system = line.removeprefix("/system").strip()
            write(f"(system prompt {'set' if system else 'removed'})\n")
        elif line:
            history.append({"role": "user", "content": line})
            history.append({"role": "assistant", "content": _answer(backend, settings, system, history, write)})


def _answer(backend, settings: GenerationSettings, system: str, history: list[dict], write) -> str:
    stop, pieces = threading.Event(), []
    try:
        check_input(history[-1]["content"])
        for item in stream_answer(backend, system, history, settings, stop):
            if isinstance(item, Prompt) and item.dropped:
                write(f"(dropped the {item.dropped} oldest messages to fit the context window)\n")
            elif isinstance(item, AnswerStats):
                write(f"\n[{item.completion_tokens} tokens, {item.tokens_per_s:.1f}/s]\n")
            elif isinstance(item, str):
                pieces.append(item)
                write(item)
    except KeyboardInterrupt:
        stop.set()
        write("\n(stopped)\n")
    except ChatsmithError as error:
        write(f"\n❌ {describe(error)}\n")
    return "".join(pieces)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Chat with a model in the terminal.")
    inference.add_model_arguments(parser)
    parser.add_argument("--workspace", help="data folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    defaults = GenerationSettings()
    for name in ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(getattr(defaults, name)),
                            default=getattr(defaults, name))
    args = parser.parse_args(argv)
    try:
        settings = GenerationSettings(**{name: getattr(args, name) for name in
                                         ("max_new_tokens", "temperature", "top_p", "top_k",
                                          "repetition_penalty", "seed")})
        workspace = Workspace.resolve(args.workspace)
        choice = inference.choice_from_arguments(args, workspace)
        print(f"Loading {choice.label or choice.id}…", flush=True)
        backend = inference.open_backend(choice, workspace,
                                         progress=lambda fraction, message: print(message, flush=True))
    except ChatsmithError as error:
        sys.exit(f"❌ {describe(error)}")
    chat_loop(backend, settings)


if __name__ == "__main__":
    main()
