"""How the Chat tab answers: `respond` streams one answer into the conversation with a status line (queue
behind a heavy job, model loading, context cut, speed), and `chat_view` is what the Chatbot shows of it.
The answer itself comes from `core.chat.stream_answer`, the loop the terminal chat uses too; this module
only shows it (redraws at most every UPDATE_EVERY_S, the status line, citations).

Stop works through a per-session event that the backends honour (`stop_event`; Gradio's `cancels` would
abandon the generator without closing it, leaving the model decoding and locked).
"""

from __future__ import annotations

import functools
import threading
import time

from core import chat, inference
from core.documents import open_collection
from core.documents.grounding import GroundedBackend
from core.errors import BadInputError
from core.inference import GenerationSettings
from tabs.common import AppContext, error_text
from tabs.messages import localised, say, translated

UPDATE_EVERY_S = 0.08  # how often a streaming answer is redrawn
_stops: dict[str, threading.Event] = {}  # per browser session: Stop sets it, the running answer reads it


def stop_event(session: str) -> threading.Event:
    """The event Stop sets for one browser session."""
    return _stops.setdefault(session, threading.Event())


def respond(ctx: AppContext, history: list[dict], choice_id: str, system: str, temperature, top_p, top_k,
            repetition, max_new, seed, documents: str = "", *, session: str, locale: str = "en"):
    """Yields (conversation, status line) while an answer streams; the last status has the speed.

    With `documents` (a collection name) the question is answered from its relevant passages, and the
    answer's message keeps its numbered citations under "citations" (`chat_view` shows them). The status
    line is in `locale` (`tabs.messages`)."""
    stop = stop_event(session)
    stop.clear()
    try:
        # Seed 0 (the default): a fresh one per answer, so Regenerate gives another (the line names it).
        settings = GenerationSettings(max_new_tokens=int(max_new), temperature=float(temperature),
                                      top_p=float(top_p), top_k=int(top_k), repetition_penalty=float(repetition),
                                      seed=int(seed or 0) or chat.fresh_seed())
        choice = find_choice(ctx, choice_id)
        note = yield from _queue(ctx, choice, history, stop, locale)
        backend, loaded_s = yield from _status_of(history, chat.open_model(choice, ctx.workspace))
        found, ground = {}, None
        if documents:
            backend = GroundedBackend(backend, open_collection(ctx.workspace, documents))
            ground = functools.partial(_ground, backend, settings=settings, found=found)
        answer = chat.stream_answer(backend, system, history, settings, stop, ground)
        prompt = next(answer)  # the prompt fitted (and grounded), or the reason it cannot be asked
    except Exception as error:  # the question stays in the conversation; the reason shows below it
        yield history, error_text(error, locale)
        return
    if prompt.dropped:
        note += say("chat.dropped", locale, count=prompt.dropped)
    grounding = found.get("grounding")
    if grounding is not None:
        note += (say("chat.sources", locale, count=len(grounding.citations)) if grounding.citations
                 else f" · 📄 {translated(grounding.note, locale)}")
    citations = [vars(citation) for citation in grounding.citations] if grounding is not None else None
    made_by = {"model": choice.label, "loaded_s": loaded_s, "locale": locale}
    yield from _stream(answer, settings, history, note, made_by, citations)


def _ground(backend: GroundedBackend, messages: list[dict], *, settings, found: dict):
    """The fitted messages with the relevant passages in the question; keeps the grounding for the status."""
    found["grounding"] = grounding = backend.ground(messages, settings)
    return backend.backend, grounding.messages


def take_back_last_question(history: list[dict]) -> tuple[list[dict], str | None]:
    """The conversation before the last question, and that question, so it can be edited and resent."""
    for index in range(len(history) - 1, -1, -1):
        if history[index]["role"] == "user":
            return history[:index], history[index]["content"]
    return history, None


def _queue(ctx: AppContext, choice, history: list[dict], stop: threading.Event, locale: str):
    """On an accelerator, wait behind a heavy job; on a CPU, chat anyway and say it will be slower."""
    job = ctx.jobs.heavy_job()
    if job is None:
        return ""
    if chat.must_wait(ctx.jobs, lambda: ctx.device().kind, choice) is None:
        return say("chat.busy", locale, title=translated(job.title, locale))
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


def _stream(answer, settings, history, note, made_by: dict, citations=None):
    """Shows `chat.stream_answer`'s pieces as they come, then the status line; the message keeps which model
    wrote it (`chat_view` marks it when several did)."""
    history = [*history, {"role": "assistant", "content": "", "model": made_by["model"]}]
    yield history, "…"
    shown = 0.0
    try:
        for piece in answer:
            if isinstance(piece, chat.AnswerStats):
                stats = piece
                continue
            history = [*history[:-1], {**history[-1], "content": history[-1]["content"] + piece}]
            # Every yield re-renders the whole chat in the browser: at 50+ tokens/s a busy laptop falls
            # behind the stream (and behind the Stop click), so send at most one update per frame budget.
            if time.perf_counter() - shown >= UPDATE_EVERY_S:
                shown = time.perf_counter()
                yield history, "…"
    except Exception as error:  # keep what was generated so far; show why it ended
        yield history, error_text(error, made_by["locale"])
        return
    if citations:
        history = [*history[:-1], {**history[-1], "citations": citations}]
    yield history, _status_line(stats, settings, made_by["loaded_s"], made_by["locale"]) + note


def _status_line(stats: chat.AnswerStats, settings, loaded_s: float, locale: str = "en") -> str:
    loaded = say("chat.loaded", locale, seconds=f"{loaded_s:.1f}") if loaded_s else ""
    ttft = (say("chat.seconds", locale, seconds=f"{stats.first_token_s:.2f}") if stats.first_token_s is not None
            else "–")
    seed = say("chat.seed", locale, seed=settings.seed) if settings.temperature > 0 else ""
    stopped = say("chat.stopped", locale) if stats.stopped else ""  # by the Stop button only, never the backends
    speed = say("chat.stats", locale, ttft=ttft, speed=f"{stats.tokens_per_s:.1f}", tokens=stats.completion_tokens)
    return f"{loaded}{speed}{seed}{stopped}"


def chat_view(history: list[dict]) -> list[dict]:
    """What the Chatbot shows: the conversation, each grounded answer followed by its numbered citations
    as closed panels (source, page and heading in the title; the passage inside). Once more than one
    model has answered, each answer is headed by the model that wrote it."""
    shown = []
    several = len({m.get("model") for m in history if m["role"] == "assistant" and m.get("model")}) > 1
    for message in history:
        shown.append(chat.mark(chat.plain(message), message.get("model")) if several else chat.plain(message))
        for citation in message.get("citations", []):
            shown.append({"role": "assistant", "content": citation["text"],
                          "metadata": {"title": f"📄 [{citation['number']}] {citation['where']}",
                                       "log": citation["id"], "status": "done"}})
    return shown


def picker_choices(ctx: AppContext, locale: str = "en") -> list[tuple[str, str]]:
    """(label, id) for Chat's model picker, the labels in `locale`."""
    try:
        return localised([(choice.label, choice.id) for choice in inference.list_choices(ctx.workspace)], locale)
    except Exception:  # e.g. the packaged default model missing: the picker still opens, errors show on use
        return localised([(inference.DEFAULT_GGUF_LABEL, "default")], locale)


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
