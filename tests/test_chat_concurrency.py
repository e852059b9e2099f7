"""Four streaming clients on one GGUF through /v1: answered at once while there are slots, then served in
the order they came, each told its place.

A live server on loopback with a real llama.cpp model (the tiny GGUF), read as raw server-sent events so
the queue comments (which SSE clients such as `openai` skip) can be seen.
"""

from __future__ import annotations

import threading
import time

import pytest

from core.inference import GenerationSettings
from core.inference.llama_cpp_engine import LlamaCppBackend
from tests.test_chat_api import api_server
from tests.test_chat_backends import tiny_gguf, varied_model_dir  # noqa: F401 (fixtures)

CLIENTS = 4


class SlowDecoding:
    """The tiny GGUF, decoding at a larger model's pace: each client's answer takes a while."""

    def __init__(self, backend, delay_s: float):
        self.backend, self.delay_s = backend, delay_s
        self.context_length, self.slots = backend.context_length, backend.slots

    def count_tokens(self, messages):
        return self.backend.count_tokens(messages)

    def stream(self, messages, settings, stop=None, usage=None):
        for piece in self.backend.stream(messages, settings, stop=stop, usage=usage):
            time.sleep(self.delay_s)
            yield piece


def read_stream(url: str, name: str, joined: threading.Event, lines: list[tuple[float, str]],
                max_tokens: int = 12) -> None:
    import httpx

    body = {"model": "fake", "stream": True, "max_tokens": max_tokens, "temperature": 0.8, "seed": 1,
            "messages": [{"role": "user", "content": f"Hello, I am {name}."}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line:
                lines.append((time.monotonic(), line))
                joined.set()


def clients_one_after_another(workspace, backend, count: int) -> list[list[tuple[float, str]]]:
    """`count` streaming clients, each sent once the one before has its place (its first line came back)."""
    received: list[list[tuple[float, str]]] = [[] for _ in range(count)]
    with api_server(workspace, backend) as url:
        threads = []
        for index in range(count):
            joined = threading.Event()
            threads.append(threading.Thread(target=read_stream, args=(url, f"client {index}", joined, received[index])))
            threads[-1].start()
            assert joined.wait(timeout=60)
        for thread in threads:
            thread.join(timeout=120)
    return received


def first_content(lines: list[tuple[float, str]]) -> float:
    return next(at for at, text in lines if '"content": "' in text and '"content": ""' not in text)


@pytest.mark.slow
def test_four_streaming_clients_on_one_slot_are_served_in_order_and_told_their_place(tiny_gguf, workspace):
    backend = SlowDecoding(LlamaCppBackend(tiny_gguf, slots=1), delay_s=0.05)
    received = clients_one_after_another(workspace, backend, CLIENTS)
    for index, lines in enumerate(received):
        texts = [text for _, text in lines]
        assert texts[-1] == "data: [DONE]", f"client {index} never finished"  # nobody starves
        places = [text for text in texts if text.startswith(": queued")]
        assert places == [f": queued, {ahead} ahead" for ahead in range(index, 0, -1)]
    first_token = [first_content(lines) for lines in received]
    assert first_token == sorted(first_token)  # first come, first served


@pytest.mark.slow
def test_four_streaming_clients_all_get_their_first_token_before_any_answer_ends(tiny_gguf, workspace):
    """Four slots: nobody waits through someone else's whole answer, and nobody is queued."""
    backend = SlowDecoding(LlamaCppBackend(tiny_gguf), delay_s=0.05)  # 40 tokens take two seconds to read
    assert backend.slots == CLIENTS
    received: list[list[tuple[float, str]]] = [[] for _ in range(CLIENTS)]
    with api_server(workspace, backend) as url:
        threads = [threading.Thread(target=read_stream, args=(url, f"client {index}", threading.Event(),
                                                              received[index], 40)) for index in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    for index, lines in enumerate(received):
        texts = [text for _, text in lines]
        assert texts[-1] == "data: [DONE]", f"client {index} never finished"
        assert not [text for text in texts if text.startswith(": queued")]
    first_done = min(next(at for at, text in lines if text == "data: [DONE]") for lines in received)
    assert max(first_content(lines) for lines in received) < first_done
    assert len(backend.backend._contexts) == CLIENTS  # one context each, over one copy of the weights


@pytest.mark.slow
def test_a_client_beyond_the_slots_waits_for_one_and_is_told_its_place(tiny_gguf, workspace):
    backend = SlowDecoding(LlamaCppBackend(tiny_gguf, slots=2), delay_s=0.05)
    received = clients_one_after_another(workspace, backend, 3)
    places = [[text for _, text in lines if text.startswith(": queued")] for lines in received]
    assert places == [[], [], [": queued, 1 ahead"]]
    assert all(lines[-1][1] == "data: [DONE]" for lines in received)


@pytest.mark.slow
def test_no_second_context_opens_without_the_memory_for_it(tiny_gguf, monkeypatch):
    """Short of memory, a second conversation waits for the first one's context instead of opening another."""
    import psutil

    backend = LlamaCppBackend(tiny_gguf)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 0})())
    settings = GenerationSettings(max_new_tokens=8, temperature=0.0)
    first = backend.stream([{"role": "user", "content": "Hello, I am Ada."}], settings)
    started = next(first)  # the first answer holds the only context
    second: list[str] = []
    waiting = threading.Thread(target=lambda: second.extend(
        backend.stream([{"role": "user", "content": "Hello, I am Bo."}], settings)))
    waiting.start()
    waiting.join(timeout=1.0)
    assert waiting.is_alive() and not second and len(backend._contexts) == 1
    assert started + "".join(first)
    waiting.join(timeout=60)
    assert second and len(backend._contexts) == 1


@pytest.mark.slow
def test_a_request_stopped_while_every_slot_is_busy_stops_waiting(tiny_gguf, monkeypatch):
    """A client that leaves while it waits for a slot does not wait on for one (nor decode when one frees)."""
    import psutil

    backend = LlamaCppBackend(tiny_gguf, slots=1)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 0})())
    settings = GenerationSettings(max_new_tokens=8, temperature=0.0)
    first = backend.stream([{"role": "user", "content": "Hello, I am Ada."}], settings)
    next(first)  # holds the only slot
    stop, second = threading.Event(), []
    waiting = threading.Thread(target=lambda: second.extend(
        backend.stream([{"role": "user", "content": "Hello, I am Bo."}], settings, stop=stop)))
    waiting.start()
    stop.set()  # the client went away
    waiting.join(timeout=5)
    assert not waiting.is_alive() and second == []
    first.close()
