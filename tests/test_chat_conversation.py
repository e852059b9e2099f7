"""Conversations: the one answer loop, the terminal loop, saving as JSON / Markdown / training example, the
input cap, queueing."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest

from core import chat, chat_saving
from core.errors import BadInputError
from core.inference import GenerationSettings
from tests.test_chat_api import FakeBackend

EXCHANGE = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"}]


def run_terminal(lines: list[str], backend=None) -> tuple[str, FakeBackend]:
    backend = backend or FakeBackend(words=2)
    script, output = iter(lines), []

    def read(prompt: str) -> str:
        output.append(prompt)
        return next(script)  # StopIteration never happens: every script ends with /exit

    chat.chat_loop(backend, GenerationSettings(), read=read, write=output.append)
    return "".join(output), backend


def test_terminal_chat_streams_keeps_history_and_obeys_commands():
    text, backend = run_terminal(["Hi", "/system Answer in French.", "And you?", "/reset", "Again", "/exit"])
    assert text.count("word0 word1") == 3 and "(system prompt set)" in text and "(conversation cleared)" in text
    second, third = backend.received[1], backend.received[2]
    assert second[0] == {"role": "system", "content": "Answer in French."}
    assert [m["content"] for m in second[1:]] == ["Hi", "word0 word1 ", "And you?"]
    assert [m["content"] for m in third] == ["Answer in French.", "Again"]  # reset kept the system prompt


def test_terminal_refuses_an_overlong_message_and_carries_on():
    text, backend = run_terminal(["x" * (chat.MAX_INPUT_CHARS + 1), "Hi", "/exit"])
    assert "the limit is 8000" in text and len(backend.received) == 1


def test_terminal_says_when_old_turns_are_dropped():
    text, backend = run_terminal(["word " * 100, "word " * 100, "short", "/exit"],
                                 FakeBackend(words=2, context_length=400))
    assert "dropped the 2 oldest messages" in text
    assert backend.received[-1][-1]["content"] == "short"


def answer(backend, history, stop=None, system="Be brief.", max_new_tokens=64) -> list:
    return list(chat.stream_answer(backend, system, history, GenerationSettings(max_new_tokens=max_new_tokens),
                                   stop or threading.Event()))


def test_an_answer_yields_its_prompt_then_pieces_then_true_stats():
    backend = FakeBackend(words=5)
    prompt, *pieces, stats = answer(backend, [{"role": "user", "content": "Hi", "model": "shown only"}])
    assert prompt == chat.Prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], 0)
    assert backend.received == [prompt.messages]  # the UI's extra keys never reach the model
    assert pieces == [f"word{index} " for index in range(5)]
    assert (stats.completion_tokens, stats.dropped, stats.stopped) == (5, 0, False)
    assert stats.first_token_s is not None and stats.first_token_s >= 0 and stats.tokens_per_s > 0


def test_a_stopped_answer_ends_early_and_says_so():
    stop, backend, got = threading.Event(), FakeBackend(words=1000), []
    for item in chat.stream_answer(backend, "", [{"role": "user", "content": "Hi"}], GenerationSettings(), stop):
        got.append(item)
        if item == "word2 ":
            stop.set()
    stats = got[-1]
    assert got[1:-1] == ["word0 ", "word1 ", "word2 "] and stats.stopped and stats.completion_tokens == 3
    assert got[0].messages[0]["role"] == "user"  # no system prompt given, none sent


def test_an_answer_reports_the_oldest_turns_it_cut_and_refuses_what_cannot_fit():
    backend = FakeBackend(words=2, context_length=200)  # 136 tokens for the prompt, 44 per old message
    history = [{"role": role, "content": "word " * 40} for _ in range(3) for role in ("user", "assistant")]
    prompt, *_, stats = answer(backend, [*history, {"role": "user", "content": "short"}])
    assert prompt.dropped == stats.dropped == 4 and len(prompt.messages) == 4  # system + last exchange + question
    assert prompt.messages[-1] == {"role": "user", "content": "short"}
    with pytest.raises(BadInputError, match="too long for this model's context window"):
        answer(backend, [{"role": "user", "content": "word " * 400}])
    assert len(backend.received) == 1  # the refused prompt never reached the model


def test_save_as_json_and_markdown(workspace):
    as_json = chat_saving.save_conversation(workspace, EXCHANGE, "default", "json")
    as_markdown = chat_saving.save_conversation(workspace, EXCHANGE, "default", "markdown")
    assert json.loads(as_json.read_text())["messages"] == EXCHANGE
    assert "**Assistant:**\n\nHello! How can I help?" in as_markdown.read_text()
    with pytest.raises(BadInputError, match="nothing to save"):
        chat_saving.save_conversation(workspace, [], "default", "json")


def test_training_examples_append_in_the_canonical_format_once(workspace):
    path, added = chat_saving.save_training_example(workspace, EXCHANGE)
    again, added_again = chat_saving.save_training_example(workspace, EXCHANGE)
    chat_saving.save_training_example(workspace, EXCHANGE[:2] + [{"role": "assistant", "content": "Hey."}])
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert path == workspace.uploads / "chat-examples.jsonl" and (added, added_again) == (True, False)
    assert len(records) == 2 and records[0]["source"] == "chat" and records[0]["messages"] == EXCHANGE
    assert set(records[0]) == {"id", "source", "messages"} and records[0]["id"] != records[1]["id"]
    with pytest.raises(BadInputError, match="question and the answer"):
        chat_saving.save_training_example(workspace, EXCHANGE[:2])


def test_training_examples_survive_concurrent_saves(workspace):
    threads = [threading.Thread(target=chat_saving.save_training_example,
                                args=(workspace, EXCHANGE[:2] + [{"role": "assistant", "content": f"Answer {i}"}]))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len((workspace.uploads / "chat-examples.jsonl").read_text().splitlines()) == 8


def test_chat_waits_while_a_heavy_job_holds_the_accelerator():
    job = SimpleNamespace(title="Training run-1", state=SimpleNamespace(value="running"))
    answers = iter([job, job, None])
    jobs = SimpleNamespace(heavy_job=lambda: next(answers))
    lines = list(chat.wait_for_accelerator(jobs, threading.Event(), poll_s=0))
    assert len(lines) == 2 and "'Training run-1' is running" in lines[0] and "queued" in lines[0]
    stopped = threading.Event()
    stopped.set()
    assert list(chat.wait_for_accelerator(SimpleNamespace(heavy_job=lambda: job), stopped)) == []


@pytest.mark.parametrize("device,kind,waits", [("cuda", "base", True), ("mps", "adapter", True),
                                               ("cuda", "gguf", False), ("cpu", "base", False)])
def test_only_transformers_on_an_accelerator_waits_for_a_heavy_job(device, kind, waits):
    job = SimpleNamespace(title="Training run-1")
    jobs = SimpleNamespace(heavy_job=lambda: job)
    assert (chat.must_wait(jobs, lambda: device, SimpleNamespace(kind=kind)) is job) is waits
    assert chat.must_wait(SimpleNamespace(heavy_job=lambda: None), lambda: device, SimpleNamespace(kind=kind)) is None
