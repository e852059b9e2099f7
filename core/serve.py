"""An OpenAI-compatible chat API over the chat backends, beside the UI or on its own.

Routes: `GET /v1/models`, `POST /v1/chat/completions` (plain, or streamed as server-sent events), and
`GET /web/`, the static chat page in `assets/web/` that talks to them. A model id `MODEL+docs:COLLECTION`
answers from a document collection and ends each answer with its numbered sources (core.documents). Errors use OpenAI's shape
(`{"error": {"message", "type", "param", "code"}}`) so the official `openai` client raises its usual
exceptions: 404 for an unknown model, 400 for bad parameters, 401 without credentials, 429 while the
caller's address must wait after wrong passwords, 503 while a heavy job holds the accelerator.

A page on another site must not make this server work: a request with a foreign `Origin` gets 403
and a body that is not `application/json` gets 415, so a cross-site "simple" request (a `text/plain`
POST, which browsers send without asking) never generates. Every request is bounded (`ApiLimits`):
its size, its message count, and its wall-clock time; when the time runs out or the client goes away,
generation stops. Requests for one model are served in arrival order (`core.inference.turns`), as many at
once as it has slots (a GGUF: `core.inference.llama_cpp_engine`; a transformers model: one); a streamed
request that waits receives SSE comment lines `: queued, N ahead`, which clients skip.

`api_routes()` builds the routes for any FastAPI app; app.py passes them to Gradio's own app, so they
share its port and login. Standalone:

    python -m core.serve --model default [--adapter RUN/adapter | --gguf FILE.gguf] --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from core import access, api_schema, inference
from core.api_schema import ApiError, ApiLimits, find_choice, parse_request
from core.errors import BadInputError, ChatsmithError, LockedError, describe
from core.inference import GenerationSettings, ModelChoice
from core.inference.turns import Line
from core.workspace import Workspace

WEB_PAGE = Path(__file__).resolve().parent.parent / "assets" / "web" / "index.html"


class Deadline(threading.Event):
    """A stop event that also reads as set once its time is up; the backends poll `is_set()` per token."""

    def __init__(self, budget_s: float):
        super().__init__()
        self.ends = time.monotonic() + budget_s

    def is_set(self) -> bool:
        return super().is_set() or self.expired

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.ends


def api_routes(workspace: Workspace, choices: Callable[[], list[ModelChoice]],
               authorized: Callable[[Request], bool] = lambda request: True,
               busy: Callable[[ModelChoice], str] = lambda choice: "",
               limits: ApiLimits = ApiLimits(), backoff: access.Backoff | None = None) -> list:
    """The API's routes. `busy(choice)` names the heavy job that chat with `choice` must wait for, or "";
    `backoff` slows down callers whose credentials were wrong (one is made when not given)."""
    api = _Api(workspace, choices, authorized, busy, limits, backoff or access.Backoff())
    router = APIRouter()

    @router.get("/v1/models")
    def models_route(request: Request):
        return _answer(lambda: api.check_caller(request) or api.list_models())

    @router.post("/v1/chat/completions")
    async def completions_route(request: Request):
        return await api.completions(request)

    @router.get("/web/")
    def web_page():
        return FileResponse(WEB_PAGE, media_type="text/html")

    return router.routes


class _Api:
    """What the routes of one API share: its callers' check, its models, and one line per loaded model."""

    def __init__(self, workspace: Workspace, choices: Callable[[], list[ModelChoice]],
                 authorized: Callable[[Request], bool], busy: Callable[[ModelChoice], str], limits: ApiLimits,
                 backoff: access.Backoff):
        self.workspace, self.choices, self.authorized, self.busy = workspace, choices, authorized, busy
        self.limits, self.backoff = limits, backoff
        self.lines: dict[str, Line] = {}  # one line per loaded model: its requests are served in arrival order
        self.lines_lock = threading.Lock()

    def check_caller(self, request: Request) -> None:
        if not access.origin_allowed(request.headers.get("origin"), request.headers.get("host")):
            raise ApiError(403, "Requests from other web sites are refused.", "permission_error")
        address = request.client.host if request.client else "unknown"
        if (wait := self.backoff.wait_s(address)) > 0:
            message, headers = access.too_many_failures(wait)
            raise ApiError(429, message, "rate_limit_error", headers=headers)
        if not self.authorized(request):
            if request.headers.get("authorization"):
                self.backoff.failed(address)
            raise ApiError(401, "Missing or wrong credentials.", "authentication_error")
        if request.headers.get("authorization"):
            self.backoff.succeeded(address)

    def list_models(self) -> JSONResponse:
        data = [{"id": c.id, "object": "model", "created": 0, "owned_by": "chatsmith", "description": c.label}
                for c in self.choices()]
        return JSONResponse({"object": "list", "data": data})

    async def completions(self, request: Request):
        stop = Deadline(self.limits.budget_s)
        try:
            self.check_caller(request)
            body = await _json_body(request, self.limits)
        except ApiError as error:
            return error.response()
        # Generation blocks, so it runs off the event loop; meanwhile the loop watches the client, whose
        # leaving stops the work (a streamed answer is stopped by its own generator's cancellation).
        work = asyncio.ensure_future(run_in_threadpool(_answer, lambda: self.complete(body, stop)))
        while not (await asyncio.wait({work}, timeout=0.25))[0]:
            if await request.is_disconnected():
                stop.set()
        return work.result()

    def complete(self, body: dict, stop: Deadline) -> object:
        choice = find_choice(self.choices(), body.get("model"))
        messages, settings, stream = parse_request(body, self.limits)
        if reason := self.busy(choice):
            raise ApiError(503, f"{reason} is using the accelerator; chat waits until it finishes.", "server_busy")
        try:
            backend = inference.open_backend(choice, self.workspace)
            messages, dropped = inference.fit_context(backend, messages, settings)
        except BadInputError as error:
            raise ApiError(400, str(error), param="messages") from error
        except LockedError as error:
            raise ApiError(403, str(error), "permission_error", param="model") from error
        except ChatsmithError as error:
            raise ApiError(500, describe(error), "server_error") from error
        headers = {"X-Chatsmith-Dropped-Messages": str(dropped)}
        with self.lines_lock:
            line = self.lines.setdefault(str(choice.gguf) if choice.kind == "gguf" else choice.model,
                                         Line(getattr(backend, "slots", 1)))
        if stream:
            return StreamingResponse(_events(backend, messages, settings, choice.id, stop, line), headers=headers,
                                     media_type="text/event-stream")
        return JSONResponse(_whole(backend, messages, settings, choice.id, stop, line), headers=headers)


def _answer(handler: Callable[[], object]) -> object:
    try:
        return handler()
    except ApiError as error:
        return error.response()


async def _json_body(request: Request, limits: ApiLimits) -> dict:
    """The request's JSON object, refusing (before reading it) what a cross-site page could send (415)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "The request body must be sent as Content-Type: application/json.")
    if int(request.headers.get("content-length") or 0) > 4 * limits.max_request_chars + 65536:
        raise ApiError(413, "The request body is too large.")
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


def app_routes(workspace: Workspace, jobs, device_kind: Callable[[], str],
               accounts: dict[str, str] | None = None, backoff: access.Backoff | None = None) -> list:
    """The routes app.py serves beside the UI: every model the workspace has, behind the app's login
    (`accounts`, the --auth pairs), waiting for heavy jobs."""
    from core.chat import must_wait

    def busy(choice: ModelChoice) -> str:
        job = must_wait(jobs, device_kind, choice)
        return f"'{job.title}'" if job else ""

    return api_routes(workspace, lambda: inference.list_choices(workspace), access.login_check(accounts), busy,
                      ApiLimits.from_env(), backoff)


def _waiting(line: Line, ticket: int, stop: Deadline) -> Iterator[int]:
    """How many requests are ahead of `ticket`, each time that changes, until its turn (or `stop`)."""
    ahead, told = line.ahead(ticket), 0
    while ahead and not stop.is_set():
        if ahead != told:
            yield ahead
            told = ahead
        ahead = line.wait(ticket, ahead, timeout=0.25)


def _whole(backend, messages: list[dict], settings: GenerationSettings, model: str, stop: Deadline,
           line: Line) -> dict:
    usage: dict = {}
    ticket = line.join()
    try:
        for _ in _waiting(line, ticket, stop):
            pass
        text = "".join(backend.stream(messages, settings, stop=stop, usage=usage))
    finally:
        line.leave(ticket)
    finish, usage = api_schema.finish(usage, settings, stop.expired)
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": finish}],
            "usage": usage}


async def _events(backend, messages: list[dict], settings: GenerationSettings, model: str, stop: Deadline,
                  line: Line):
    """Server-sent events. Async, so a client that goes away cancels us here and we can stop decoding.

    Starlette never closes a plain generator when the client disconnects, so the model would decode
    for nobody and keep its lock; here cancellation reaches `finally`, which stops and closes it.
    """
    events = _sse(backend, messages, settings, model, stop, line)
    try:
        while (event := await run_in_threadpool(next, events, None)) is not None:
            yield event
    finally:
        stop.set()
        events.close()


def _sse(backend, messages: list[dict], settings: GenerationSettings, model: str,
         stop: Deadline, line: Line) -> Iterator[str]:
    """The answer as events; while other requests hold the model, a comment line (which SSE clients
    skip) says how many are ahead, each time that changes."""
    usage: dict = {}
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish: str | None = None) -> str:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload)}\n\n"

    ticket = line.join()
    try:
        yield chunk({"role": "assistant", "content": ""})
        for ahead in _waiting(line, ticket, stop):
            yield f": queued, {ahead} ahead\n\n"
        for piece in backend.stream(messages, settings, stop=stop, usage=usage):
            yield chunk({"content": piece})
        yield chunk({}, api_schema.finish(usage, settings, stop.expired)[0])
        yield "data: [DONE]\n\n"
    except ChatsmithError as error:  # the status line is sent already: report in the stream
        yield f"data: {json.dumps({'error': {'message': describe(error), 'type': 'server_error'}})}\n\n"
    finally:
        line.leave(ticket)


# ---- standalone ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve one model through an OpenAI-compatible API.")
    inference.add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (needed off 127.0.0.1)")
    parser.add_argument("--workspace", help="data folder (default: $CHATSMITH_WORKSPACE or ./workspace)")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        parser.error(f"--host {args.host} is reachable from the network: add --api-key.")
    workspace = Workspace.resolve(args.workspace)
    try:
        choice = inference.choice_from_arguments(args, workspace)
    except ChatsmithError as error:
        parser.error(describe(error))
    serve(choice, workspace, args.host, args.port, args.api_key)


def serve(choice: ModelChoice, workspace: Workspace, host: str, port: int, api_key: str | None = None) -> None:
    import uvicorn
    from fastapi import FastAPI

    print(f"Loading {choice.label or choice.id}…", flush=True)
    inference.open_backend(choice, workspace)  # load before listening, so the first request is fast
    key = f"Bearer {api_key}".encode()
    authorized = (lambda request: secrets.compare_digest(request.headers.get("authorization", "").encode(), key)) \
        if api_key else (lambda request: True)
    app = FastAPI(routes=api_routes(workspace, lambda: [choice], authorized, limits=ApiLimits.from_env()),
                  docs_url=None, redoc_url=None)
    print(f"Serving '{choice.id}' on http://{host}:{port}/v1 (chat page: http://{host}:{port}/web/)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
