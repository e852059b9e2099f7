"""The OpenAI-compatible API, driven by the official `openai` client against a server on localhost.

Most tests put a fake backend behind the routes (fast, and it records what it was sent and whether it
was stopped); one starts `python -m core.serve --gguf` on the default model's packaged GGUF for real.
`FakeBackend` and `api_server` are shared with the Chat tab's tests.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from core import inference, serve
from core.inference import ModelChoice
from tests.browser import ROOT, free_port

FAKE = ModelChoice(kind="gguf", id="fake", label="Fake model")
HELLO = [{"role": "user", "content": "Hello there"}]


class FakeBackend:
    """Answers with `words` one piece at a time; one token per word; honours the stop event."""

    def __init__(self, words: int = 8, delay_s: float = 0.0, context_length: int = 4096):
        self.words, self.delay_s, self.context_length = words, delay_s, context_length
        self.received: list[list[dict]] = []
        self.stopped = threading.Event()

    def count_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream(self, messages, settings, stop=None, usage=None):
        self.received.append(messages)
        sent = 0
        try:
            for index in range(min(self.words, settings.max_new_tokens)):
                if stop is not None and stop.is_set():
                    self.stopped.set()
                    break
                time.sleep(self.delay_s)
                sent += 1
                yield f"word{index} "
        finally:
            if usage is not None:
                usage.update(prompt_tokens=self.count_tokens(messages), completion_tokens=sent)
            if stop is not None and stop.is_set():
                self.stopped.set()


@contextlib.contextmanager
def api_server(workspace, backend, authorized=lambda request: True, busy=lambda choice: "", **options):
    """The API's routes in a uvicorn server on a free port, with `backend` behind every model; `options`
    go to `api_routes` (limits, backoff)."""
    import uvicorn
    from fastapi import FastAPI

    original = inference.open_backend
    inference.open_backend = lambda choice, ws, progress=None: backend
    app = FastAPI(routes=serve.api_routes(workspace, lambda: [FAKE], authorized, busy, **options))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        inference.open_backend = original


def client(url: str, key: str = "unused"):
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def test_plain_completion_with_usage(workspace):
    with api_server(workspace, FakeBackend(words=3)) as url:
        reply = client(url).chat.completions.create(model="fake", messages=HELLO, temperature=0)
    assert reply.choices[0].message.content == "word0 word1 word2 "
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.completion_tokens == 3 and reply.usage.total_tokens == reply.usage.prompt_tokens + 3


def test_streamed_completion_arrives_in_pieces(workspace):
    with api_server(workspace, FakeBackend(words=5)) as url:
        stream = client(url).chat.completions.create(model="fake", messages=HELLO, stream=True, max_tokens=4)
        chunks = [chunk.choices[0] for chunk in stream]
    assert "".join(c.delta.content or "" for c in chunks) == "word0 word1 word2 word3 "
    assert sum(1 for c in chunks if c.delta.content) == 4 and chunks[-1].finish_reason == "length"


def test_models_are_listed(workspace):
    with api_server(workspace, FakeBackend()) as url:
        assert [model.id for model in client(url).models.list()] == ["fake"]


def test_unknown_model_and_bad_parameters_raise_the_clients_errors(workspace):
    import openai

    backend = FakeBackend()
    with api_server(workspace, backend) as url:
        api = client(url)
        with pytest.raises(openai.NotFoundError, match="does not exist here. Known models: fake"):
            api.chat.completions.create(model="gpt-9", messages=HELLO)
        with pytest.raises(openai.BadRequestError, match="temperature must be between 0 and 2"):
            api.chat.completions.create(model="fake", messages=HELLO, temperature=7)
        with pytest.raises(openai.BadRequestError, match="role"):
            api.chat.completions.create(model="fake", messages=[{"role": "wizard", "content": "hi"}])
        with pytest.raises(openai.BadRequestError, match="max_new_tokens"):
            api.chat.completions.create(model="fake", messages=HELLO, max_tokens=10**6)
    assert backend.received == []  # nothing reached the model


def test_long_history_is_cut_and_the_client_is_told(workspace):
    backend = FakeBackend(context_length=300)
    history = [{"role": "system", "content": "Be brief."}] + [
        {"role": role, "content": "word " * 40} for _ in range(6) for role in ("user", "assistant")] + HELLO
    with api_server(workspace, backend) as url:
        raw = client(url).chat.completions.with_raw_response.create(model="fake", messages=history, max_tokens=64)
    dropped = int(raw.headers["x-chatsmith-dropped-messages"])
    assert dropped > 0 and backend.received[0] == [history[0], *history[1 + dropped:]]


def test_closing_a_stream_stops_the_generation(workspace):
    backend = FakeBackend(words=10_000, delay_s=0.01)
    with api_server(workspace, backend) as url:
        stream = client(url).chat.completions.create(model="fake", messages=HELLO, stream=True, max_tokens=2000)
        next(iter(stream)), next(iter(stream))
        stream.close()
        assert backend.stopped.wait(timeout=30)


def test_busy_accelerator_and_missing_credentials_are_refused(workspace):
    import openai

    with api_server(workspace, FakeBackend(), busy=lambda choice: "'Training run-1'") as url:
        with pytest.raises(openai.InternalServerError, match="Training run-1' is using the accelerator"):
            client(url).chat.completions.create(model="fake", messages=HELLO)
    need_key = lambda request: request.headers.get("authorization") == "Bearer s3cret"  # noqa: E731
    with api_server(workspace, FakeBackend(words=1), authorized=need_key) as url:
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong").models.list()
        assert client(url, key="s3cret").chat.completions.create(model="fake", messages=HELLO).choices


@pytest.mark.slow
def test_standalone_server_answers_with_the_default_gguf(tmp_path):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "core.serve", "--model", "default", "--port", str(port),
                                "--workspace", str(tmp_path / "ws")], cwd=ROOT, env=dict(os.environ),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:  # it prints "Serving" once the model is loaded and the port bound
            if line.startswith("Serving"):
                break
        _wait_for(f"http://127.0.0.1:{port}/v1/models", process)
        api = client(f"http://127.0.0.1:{port}")
        assert [model.id for model in api.models.list()] == ["default"]
        reply = api.chat.completions.create(model="default", messages=HELLO, max_tokens=8, temperature=0)
        assert reply.choices[0].message.content.strip() and reply.usage.completion_tokens <= 8
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/web/").read().decode()
        assert "chat/completions" in page
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_standalone_server_refuses_a_network_address_without_a_key():
    result = subprocess.run([sys.executable, "-m", "core.serve", "--host", "0.0.0.0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--api-key" in result.stderr


def _wait_for(url: str, process) -> None:
    for _ in range(200):
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2)
            return
        if process.poll() is not None:
            raise RuntimeError("server exited")
        time.sleep(0.25)
    raise RuntimeError(f"{url} never answered")
