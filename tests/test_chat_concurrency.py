"""Four streaming clients on one GGUF through /v1: served in the order they came, each told its place.

A live server on loopback with a real llama.cpp model (the tiny GGUF), read as raw server-sent events so
the queue comments (which SSE clients such as `openai` skip) can be seen.
"""

from __future__ import annotations

import threading
import time

from core.inference.llama_cpp_engine import LlamaCppBackend
from tests.test_chat_api import api_server
from tests.test_chat_backends import tiny_gguf, varied_model_dir  # noqa: F401 (fixtures)

CLIENTS = 4


class SlowDecoding:
    """The tiny GGUF, decoding at a larger model's pace: each client's answer takes a while."""

    def __init__(self, backend, delay_s: float):
        self.backend, self.delay_s = backend, delay_s
        self.context_length = backend.context_length

    def count_tokens(self, messages):
        return self.backend.count_tokens(messages)

    def stream(self, messages, settings, stop=None, usage=None):
        for piece in self.backend.stream(messages, settings, stop=stop, usage=usage):
            time.sleep(self.delay_s)
            yield piece


def read_stream(url: str, name: str, joined: threading.Event, lines: list[tuple[float, str]]) -> None:
    import httpx

    body = {"model": "fake", "stream": True, "max_tokens": 12, "temperature": 0.8, "seed": 1,
            "messages": [{"role": "user", "content": f"Hello, I am {name}."}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if line:
                lines.append((time.monotonic(), line))
                joined.set()


def test_four_streaming_clients_are_served_in_order_and_told_their_place(tiny_gguf, workspace):
    backend = SlowDecoding(LlamaCppBackend(tiny_gguf), delay_s=0.05)
    received: list[list[tuple[float, str]]] = [[] for _ in range(CLIENTS)]
    with api_server(workspace, backend) as url:
        threads = []
        for index in range(CLIENTS):  # each starts once the one before has its place in line
            joined = threading.Event()
            threads.append(threading.Thread(target=read_stream, args=(url, f"client {index}", joined, received[index])))
            threads[-1].start()
            assert joined.wait(timeout=60)
        for thread in threads:
            thread.join(timeout=120)
    for index, lines in enumerate(received):
        texts = [text for _, text in lines]
        assert texts[-1] == "data: [DONE]", f"client {index} never finished"  # nobody starves
        places = [text for text in texts if text.startswith(": queued")]
        assert places == [f": queued, {ahead} ahead" for ahead in range(index, 0, -1)]
    first_token = [next(at for at, text in lines if '"content": "' in text and '"content": ""' not in text)
                   for lines in received]
    assert first_token == sorted(first_token)  # first come, first served
