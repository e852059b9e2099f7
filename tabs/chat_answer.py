"""How the Chat tab answers: `respond` streams one answer into the conversation with a status line (queue
behind a heavy job, model loading, context cut, speed), and `chat_view` is what the Chatbot shows of it.

Stop works through a per-session event that the backends honour (`stop_event`; Gradio's `cancels` would
abandon the generator without closing it, leaving the model decoding and locked).
"""

from __future__ import annotations

import threading
import time

from core import chat, inference
from core.documents import open_collection
from core.documents.grounding import GroundedBackend
from core.errors import BadInputError
from core.inference import GenerationSettings
from tabs.common import AppContext, error_text

UPDATE_EVERY_S = 0.08  # how often a streaming answer is redrawn
_stops: dict[str, threading.Event] = {}  # per browser session: Stop sets it, the running answer reads it


def stop_event(session: str) -> threading.Event:
    """The event Stop sets for one browser session."""
    return _stops.setdefault(session, threading.Event())


def respond(ctx: AppContext, history: list[dict], choice_id: str, system: str, temperature, top_p, top_k,
            repetition, max_new, seed, documents: str = "", *, session: str):
    """Yields (conversation, status line) while an answer streams; the last status has the speed.

    With `documents` (a collection name) the question is answered from its relevant passages, and the
    answer's message keeps its numbered citations under "citations" (`chat_view` shows them)."""
    stop = stop_event(session)
    stop.clear()
    try:
        # Seed 0 (the default): a fresh one per answer, so Regenerate gives another (the line names it).
        settings = GenerationSettings(max_new_tokens=int(max_new), temperature=float(temperature),
                                      top_p=float(top_p), top_k=int(top_k), repetition_penalty=float(repetition),
                                      seed=int(seed or 0) or chat.fresh_seed())
        choice = find_choice(ctx, choice_id)
        note = yield from _queue(ctx, choice, history, stop)
        backend, loaded_s = yield from _status_of(history, chat.open_model(choice, ctx.workspace))
        if documents:
            backend = GroundedBackend(backend, open_collection(ctx.workspace, documents))
        system = (system or "").strip()
        prefix = [{"role": "system", "content": system}] if system else []
        messages, dropped = inference.fit_context(backend, prefix + [_plain(m) for m in history], settings)
        if dropped:
            note += f" · ✂️ the {dropped} oldest messages no longer fit the context window and were left out"
        grounding = backend.ground(messages, settings) if documents else None
    except Exception as error:  # the question stays in the conversation; the reason shows below it
        yield history, error_text(error)
        return
    answer = {"model": choice.label, "loaded_s": loaded_s}
    if grounding is None:
        yield from _stream(backend, messages, settings, history, stop, note, answer)
        return
    note += f" · 📄 {len(grounding.citations)} sources" if grounding.citations else f" · 📄 {grounding.note}"
    yield from _stream(backend.backend, grounding.messages, settings, history, stop, note, answer,
                       citations=[vars(citation) for citation in grounding.citations])


def take_back_last_question(history: list[dict]) -> tuple[list[dict], str | None]:
    """The conversation before the last question, and that question, so it can be edited and resent."""
    for index in range(len(history) - 1, -1, -1):
        if history[index]["role"] == "user":
            return history[:index], history[index]["content"]
    return history, None


def _queue(ctx: AppContext, choice, history: list[dict], stop: threading.Event):
    """On an accelerator, wait behind a heavy job; on a CPU, chat anyway and say it will be slower."""
    job = ctx.jobs.heavy_job()
    if job is None:
        return ""
    if chat.must_wait(ctx.jobs, lambda: ctx.device().kind, choice) is None:
        return f" · ℹ️ '{job.title}' is running on this machine too, so answers are slower"
    for line in chat.wait_for_accelerator(ctx.jobs, stop):
        yield history, line
    return ""


def _status_of(history: list[dict], lines):
    """Passes a core generator's status lines on beside the conversation; returns what it returns."""
    while True:
        try:
            line = next(lines)
        except StopIteration as done:
            return done.value
        yield history, line


def _stream(backend, messages, settings, history, stop, note, answer: dict, citations=None):
    """Streams the answer; the message keeps which model wrote it (`chat_view` marks it when several did)."""
    history = [*history, {"role": "assistant", "content": "", "model": answer["model"]}]
    yield history, "…"
    usage, started, first, shown = {}, time.perf_counter(), None, 0.0
    try:
        for piece in backend.stream(messages, settings, stop=stop, usage=usage):
            first = first or time.perf_counter()
            history = [*history[:-1], {**history[-1], "content": history[-1]["content"] + piece}]
            # Every yield re-renders the whole chat in the browser: at 50+ tokens/s a busy laptop falls
            # behind the stream (and behind the Stop click), so send at most one update per frame budget.
            if time.perf_counter() - shown >= UPDATE_EVERY_S:
                shown = time.perf_counter()
                yield history, "…"
    except Exception as error:  # keep what was generated so far; show why it ended
        yield history, error_text(error)
        return
    tokens, ended = usage.get("completion_tokens", 0), time.perf_counter()
    speed = tokens / (ended - first) if first and ended > first else 0.0
    ttft = f"{(first - started):.2f} s" if first else "–"
    loaded = f"model loaded in {answer['loaded_s']:.1f} s · " if answer["loaded_s"] else ""
    seed = f" · seed {settings.seed}" if settings.temperature > 0 else ""
    stopped = " · ⏹ stopped" if stop.is_set() else ""  # set by the Stop button only, never by the backends
    if citations:
        history = [*history[:-1], {**history[-1], "citations": citations}]
    yield history, f"{loaded}first token {ttft} · {speed:.1f} tokens/s · {tokens} tokens{seed}{stopped}{note}"


def chat_view(history: list[dict]) -> list[dict]:
    """What the Chatbot shows: the conversation, each grounded answer followed by its numbered citations
    as closed panels (source, page and heading in the title; the passage inside). Once more than one
    model has answered, each answer is headed by the model that wrote it."""
    shown = []
    several = len({m.get("model") for m in history if m["role"] == "assistant" and m.get("model")}) > 1
    for message in history:
        shown.append(chat.mark(_plain(message), message.get("model")) if several else _plain(message))
        for citation in message.get("citations", []):
            shown.append({"role": "assistant", "content": citation["text"],
                          "metadata": {"title": f"📄 [{citation['number']}] {citation['where']}",
                                       "log": citation["id"], "status": "done"}})
    return shown


def _plain(message: dict) -> dict:
    return {"role": message["role"], "content": message["content"]}


def picker_choices(ctx: AppContext) -> list[tuple[str, str]]:
    try:
        return [(choice.label, choice.id) for choice in inference.list_choices(ctx.workspace)]
    except Exception:  # e.g. the packaged default model missing: the picker still opens, errors show on use
        return [(inference.DEFAULT_GGUF_LABEL, "default")]


def model_label(ctx: AppContext, choice_id: str) -> str:
    try:
        return find_choice(ctx, choice_id).label
    except BadInputError:  # the model went away since it answered: its id still says which it was
        return choice_id


def find_choice(ctx: AppContext, choice_id: str):
    for choice in inference.list_choices(ctx.workspace):
        if choice.id == choice_id:
            return choice
    raise BadInputError(f"The model '{choice_id}' is no longer available.", "Click 'Refresh list' and pick again.")
