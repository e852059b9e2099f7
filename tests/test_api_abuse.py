"""The OpenAI-compatible API against hostile or careless clients, on a live server on loopback: requests
that cost far more than they weigh, cross-site requests, password guessing, and the edge cases of
OpenAI's format that used to be answered wrongly."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from core import access, inference
from core.api_schema import ApiLimits
from core.errors import BadInputError
from core.inference import GenerationSettings
from tests.test_chat_api import HELLO, FakeBackend, api_server, client


class CountingBackend(FakeBackend):
    """Counts how often, and over how many messages, the prompt was tokenised."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = self.messages_counted = 0

    def count_tokens(self, messages):
        self.calls += 1
        self.messages_counted += len(messages)
        return super().count_tokens(messages)


def one_exchange_at_a_time(backend, messages, settings):
    """How the context used to be fitted (a full re-count per dropped exchange): the answers to match."""
    budget = backend.context_length - settings.max_new_tokens
    system = [m for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    dropped = 0
    while backend.count_tokens(system + turns) > budget:
        if len(turns) <= 1:
            raise BadInputError("too long")
        cut = 2 if len(turns) > 2 and turns[1]["role"] == "assistant" else 1
        turns, dropped = turns[cut:], dropped + cut
    return system + turns, dropped


def history(exchanges: int, words: int = 3) -> list[dict]:
    turns = [{"role": role, "content": f"turn{i} " + "word " * words} for i in range(exchanges)
             for role in ("user", "assistant")]
    return [{"role": "system", "content": "Be brief."}, *turns, *HELLO]


def post(url: str, body, headers: dict | None = None, timeout: float = 60) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


# ---- requests that cost far more than they weigh ------------------------------------------------

def test_a_long_history_is_fitted_with_a_handful_of_tokenisations(workspace):
    messages = history(400)  # 802 messages, about 30 of which fit
    backend = CountingBackend(context_length=300)
    with api_server(workspace, backend) as url:
        raw = client(url).chat.completions.with_raw_response.create(model="fake", messages=messages, max_tokens=64)
    reference = CountingBackend(context_length=300)
    expected, dropped = one_exchange_at_a_time(reference, messages, GenerationSettings(max_new_tokens=64))
    assert backend.received == [expected] and int(raw.headers["x-chatsmith-dropped-messages"]) == dropped
    assert reference.calls > 350  # what one request used to cost: a full count per dropped exchange
    assert backend.calls <= 12 and backend.messages_counted <= 12 * len(messages)


@pytest.mark.parametrize("context", [40, 90, 150, 400, 10_000])
def test_fitting_drops_what_dropping_one_exchange_at_a_time_dropped(context):
    odd = [{"role": "assistant", "content": "Hello, I greet first."}, {"role": "user", "content": "a b c"},
           {"role": "user", "content": "again, twice"}, {"role": "system", "content": "late system"},
           {"role": "assistant", "content": "x " * 30}, {"role": "user", "content": "y " * 12},
           {"role": "assistant", "content": "z"}, {"role": "user", "content": "last question here"}]
    settings = GenerationSettings(max_new_tokens=16)
    for messages in (history(20), history(7, words=11), odd, odd[-1:], [odd[3], odd[-1]]):
        backend = FakeBackend(context_length=context)
        try:
            expected = one_exchange_at_a_time(backend, messages, settings)
        except BadInputError:
            with pytest.raises(BadInputError, match="too long for this model's context window"):
                inference.fit_context(backend, messages, settings)
            continue
        assert inference.fit_context(backend, messages, settings) == expected


def test_more_messages_than_the_cap_are_refused_before_any_work(workspace):
    import openai

    backend = CountingBackend()
    with api_server(workspace, backend, limits=ApiLimits(max_messages=1000)) as url:
        with pytest.raises(openai.BadRequestError, match="At most 1000 messages per request"):
            client(url).chat.completions.create(model="fake", messages=HELLO * 1001)
    assert backend.calls == 0 and backend.received == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_request_stops_when_its_time_budget_runs_out(workspace, stream):
    backend = FakeBackend(words=10_000, delay_s=0.01, context_length=20_000)  # about 100 s of answer
    with api_server(workspace, backend, limits=ApiLimits(budget_s=1.5)) as url:
        api = client(url)
        if stream:
            chunks = [chunk.choices[0] for chunk in api.chat.completions.create(
                model="fake", messages=HELLO, stream=True, max_tokens=8000)]
            finish, text = chunks[-1].finish_reason, "".join(c.delta.content or "" for c in chunks)
        else:
            reply = api.chat.completions.create(model="fake", messages=HELLO, max_tokens=8000)
            finish, text = reply.choices[0].finish_reason, reply.choices[0].message.content
    assert backend.stopped.is_set() and finish == "length"
    assert 0 < text.count("word") < 2000  # cut after the budget, with what was generated until then


def test_a_client_that_hangs_up_stops_a_non_streamed_answer(workspace):
    backend = FakeBackend(words=10_000, delay_s=0.01, context_length=20_000)
    with api_server(workspace, backend) as url:
        body = json.dumps({"model": "fake", "messages": HELLO, "max_tokens": 8000}).encode()
        address = urllib.parse.urlsplit(url)
        with socket.create_connection((address.hostname, address.port)) as connection:
            connection.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            time.sleep(1.0)  # generating now; then the client goes away without reading
        assert backend.stopped.wait(timeout=15)


# ---- requests from other web sites ---------------------------------------------------------------

def test_cross_site_requests_do_no_work(workspace):
    backend = CountingBackend()
    with api_server(workspace, backend) as url:
        body = {"model": "fake", "messages": HELLO}
        host = urllib.parse.urlsplit(url).netloc
        # A form or fetch() from any page may POST text/plain without a preflight: refused unread.
        assert post(url, json.dumps(body).encode(), {"Content-Type": "text/plain"})[0] == 415
        assert post(url, json.dumps(body).encode(), {"Content-Type": "application/x-www-form-urlencoded"})[0] == 415
        for origin in ("http://evil.example", "null", f"http://evil.example:{host.rsplit(':', 1)[1]}"):
            status, _, answer = post(url, body, {"Origin": origin})
            assert status == 403 and "other web sites" in answer["error"]["message"]
        assert backend.received == [] and backend.calls == 0
        for origin in (None, "http://localhost:5173", "http://127.0.0.1:3000", f"http://{host}"):
            assert post(url, body, {"Origin": origin} if origin else {})[0] == 200
    assert len(backend.received) == 4


# ---- wrong credentials ----------------------------------------------------------------------------

def test_wrong_bearer_tokens_must_wait_longer_and_longer(workspace):
    import openai

    backoff = access.Backoff(access.BackoffSettings(free_failures=3, first_wait_s=1.0))
    need_key = lambda request: access.bearer(request) == "s3cret"  # noqa: E731
    with api_server(workspace, FakeBackend(words=1), authorized=need_key, backoff=backoff) as url:
        wrong = client(url, key="guess")
        for _ in range(4):  # three free failures, then the fourth starts the wait
            with pytest.raises(openai.AuthenticationError):
                wrong.models.list()
        with pytest.raises(openai.RateLimitError, match="Too many wrong passwords") as refused:
            client(url, key="s3cret").models.list()  # even the right key waits its turn
        wait = int(refused.value.response.headers["retry-after"])
        assert 1 <= wait <= 2
        time.sleep(wait)
        assert [model.id for model in client(url, key="s3cret").models.list()] == ["fake"]
        with pytest.raises(openai.AuthenticationError):  # a success starts the address over
            wrong.models.list()


# ---- OpenAI's format ------------------------------------------------------------------------------

def test_malformed_parameters_get_openais_400(workspace):
    import openai

    backend = CountingBackend()
    with api_server(workspace, backend) as url:
        with pytest.raises(openai.BadRequestError, match="max_new_tokens must be between 1"):
            client(url).chat.completions.create(model="fake", messages=HELLO, max_tokens=0)
        bad = [({"stream": "false"}, "'stream' must be true or false"),
               ({"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]}, "must be a text part"),
               ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
                "must be a text part")]
        for fields, message in bad:
            status, _, answer = post(url, {"model": "fake", "messages": HELLO, **fields})
            assert status == 400 and message in answer["error"]["message"]
        parts = [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]
        assert post(url, {"model": "fake", "messages": [{"role": "user", "content": parts}], "stream": False})[0] == 200
    assert backend.received == [HELLO]


@pytest.mark.slow
def test_a_gguf_answer_cut_at_max_tokens_says_length(workspace):
    from core.models import packaged_gguf

    question = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]
    with api_server(workspace, inference.gguf_backend(packaged_gguf())) as url:
        api = client(url)
        reply = api.chat.completions.create(model="fake", messages=question, max_tokens=5, temperature=0)
        assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 5
        chunks = list(api.chat.completions.create(model="fake", messages=question, max_tokens=5, temperature=0,
                                                  stream=True))
        assert chunks[-1].choices[0].finish_reason == "length"
        short = api.chat.completions.create(model="fake", messages=[{"role": "user", "content": "Say hi."}],
                                            max_tokens=200, temperature=0)
        assert short.choices[0].finish_reason == "stop" and short.usage.completion_tokens < 200
