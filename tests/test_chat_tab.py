"""The Chat tab's answer loop with a fake backend: streaming, stop, context cutting, queueing behind a heavy job."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from core import inference
from tabs import chat_answer
from tabs.common import AppContext
from tests.test_chat_api import FAKE, FakeBackend

SETTINGS = dict(choice_id="fake", system="", temperature=0.0, top_p=0.9, top_k=40, repetition=1.0,
                max_new=64, seed=0)
QUESTION = [{"role": "user", "content": "Hi"}]


def fake_context(workspace, monkeypatch, words: int) -> AppContext:
    backend = FakeBackend(words=words)
    monkeypatch.setattr(inference, "list_choices", lambda ws: [FAKE])
    monkeypatch.setattr(inference, "open_backend", lambda choice, ws, progress=None: backend)
    context = AppContext(workspace)
    context.backend = backend
    return context


@pytest.fixture
def ctx(workspace, monkeypatch):
    return fake_context(workspace, monkeypatch, words=6)


def run(ctx, history=QUESTION, session="s1", **overrides):
    return list(chat_answer.respond(ctx, history, **{**SETTINGS, **overrides}, session=session))


def test_answer_streams_into_the_conversation_and_reports_speed(ctx, monkeypatch):
    monkeypatch.setattr(chat_answer, "UPDATE_EVERY_S", 0.0)  # every piece shown
    steps = run(ctx, system="Be brief.")
    answers = [history[-1]["content"] for history, _ in steps if history[-1]["role"] == "assistant"]
    assert answers[1] == "word0 " and answers[-1] == "word0 word1 word2 word3 word4 word5 "
    assert answers == sorted(answers, key=len)  # text only grows while streaming
    assert "tokens/s" in steps[-1][1] and "6 tokens" in steps[-1][1] and "first token" in steps[-1][1]
    assert ctx.backend.received[0][0] == {"role": "system", "content": "Be brief."}
    assert QUESTION == [{"role": "user", "content": "Hi"}]  # the caller's history is not mutated


def test_the_line_under_an_answer_reads_in_chinese_for_a_chinese_browser(ctx):
    status = run(ctx, locale="zh", temperature=0.7, seed=5)[-1][1]
    assert "词元/秒" in status and "6 个词元" in status and "首个词元" in status and "随机种子 5" in status
    assert not re.search(r"tokens|first token|seed", status)
    assert "6 tokens" in run(ctx)[-1][1]  # an English browser (and the API) read it as before


def test_stop_ends_the_answer_and_keeps_the_partial_text(ctx, monkeypatch):
    ctx.backend.words = 1000
    monkeypatch.setattr(chat_answer, "UPDATE_EVERY_S", 0.0)  # every piece shown, so the stop lands after the third
    stream = chat_answer.respond(ctx, QUESTION, **SETTINGS, session="s2")
    for history, _ in stream:
        if history[-1]["role"] == "assistant" and history[-1]["content"].count("word") == 3:
            chat_answer._stops["s2"].set()  # what the Stop button's handler does for this session
            break
    history, status = list(stream)[-1]
    assert "⏹ stopped" in status and 3 <= history[-1]["content"].count("word") < 10


def test_long_history_is_cut_and_the_user_is_told(ctx):
    ctx.backend.context_length = 300
    history = [{"role": role, "content": "word " * 40} for _ in range(5) for role in ("user", "assistant")]
    history, status = run(ctx, history + QUESTION, system="Stay on topic.")[-1]
    assert "oldest messages no longer fit" in status
    sent = ctx.backend.received[0]
    assert sent[0]["role"] == "system" and sent[-1] == QUESTION[0] and len(sent) < 12
    assert len(history) == 12  # the visible conversation keeps everything


def test_bad_settings_are_reported_without_losing_the_question(ctx):
    history, status = run(ctx, temperature=5)[-1]
    assert history == QUESTION and "temperature must be between 0 and 2" in status


def test_chat_queues_behind_a_heavy_job_on_an_accelerator(ctx, monkeypatch):
    job = SimpleNamespace(title="Training run-1", state=SimpleNamespace(value="running"))
    answers = iter([job, job, job, None])  # seen by the check, by must_wait, then once while waiting
    monkeypatch.setattr(ctx.jobs, "heavy_job", lambda: next(answers, None))
    monkeypatch.setattr(ctx, "device", lambda: SimpleNamespace(kind="cuda"))
    monkeypatch.setattr(inference, "list_choices",
                        lambda ws: [inference.ModelChoice(kind="base", model="x", id="fake")])
    monkeypatch.setattr(chat_answer.chat, "wait_for_accelerator",
                        lambda jobs, stop: (f"⏳ Waiting: '{j.title}'" for j in iter(jobs.heavy_job, None)))
    statuses = [status for _, status in run(ctx)]
    assert statuses[0].startswith("⏳ Waiting: 'Training run-1'") and "tokens/s" in statuses[-1]


def test_chat_on_a_cpu_runs_beside_a_heavy_job_and_says_so(ctx, monkeypatch):
    job = SimpleNamespace(title="Training run-1", state=SimpleNamespace(value="running"))
    monkeypatch.setattr(ctx.jobs, "heavy_job", lambda: job)
    monkeypatch.setattr(ctx, "device", lambda: SimpleNamespace(kind="cpu"))
    assert "'Training run-1' is running on this machine too" in run(ctx)[-1][1]


def test_unknown_model_says_to_refresh(ctx):
    assert "Refresh list" in run(ctx, choice_id="gone")[-1][1]


def test_edit_takes_back_the_last_question_and_its_answer():
    history = [*QUESTION, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Typo qestion"},
               {"role": "assistant", "content": "Pardon?"}]
    assert chat_answer.take_back_last_question(history) == (history[:2], "Typo qestion")
    assert chat_answer.take_back_last_question([]) == ([], None)


@pytest.fixture
def docs_ctx(shipped_documents, monkeypatch):
    return fake_context(shipped_documents, monkeypatch, words=4)


def test_an_answer_from_documents_shows_numbered_citations_that_open(docs_ctx):
    question = [{"role": "user", "content": "女职工生孩子可以休多少天产假？"}]
    history, status = run(docs_ctx, question, documents="shipped")[-1]

    assert f"📄 {len(history[-1]['citations'])} sources" in status
    assert "九十天" in docs_ctx.backend.received[0][-1]["content"]  # the model read the passage
    [first, *_] = history[-1]["citations"]
    assert first["number"] == 1 and "九十天" in first["text"] and first["where"].startswith("labour-law.md · ")
    shown = chat_answer.chat_view(history)
    assert shown[:2] == [question[0], {"role": "assistant", "content": history[-1]["content"]}]
    assert shown[2] == {"role": "assistant", "content": first["text"], "metadata": {
        "title": f"📄 [1] {first['where']}", "log": first["id"], "status": "done"}}  # a closed panel


def test_documents_with_nothing_relevant_say_so_and_cite_nothing(docs_ctx):
    question = [{"role": "user", "content": "How do I bake sourdough bread at home?"}]
    history, status = run(docs_ctx, question, documents="shipped")[-1]
    assert "Nothing in the collection 'shipped' is relevant to this question" in status
    assert "citations" not in history[-1]
    assert chat_answer.chat_view(history) == [*question, {"role": "assistant", "content": history[-1]["content"]}]
    assert docs_ctx.backend.received[0] == question  # asked as it is


def test_a_fast_stream_is_redrawn_in_batches_not_once_per_token(ctx):
    """A browser re-renders the whole chat on every update; at 50+ tokens/s a busy one fell behind the
    stream and the Stop click, so updates are throttled, and the last one still carries the whole answer."""
    ctx.backend.words = 400
    steps = run(ctx)
    answers = [history[-1]["content"] for history, _ in steps if history[-1]["role"] == "assistant"]
    tokens = answers[-1].count("word")  # as many as max_new_tokens allows
    assert tokens >= 60 and len(answers) < tokens / 4
