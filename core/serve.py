"""An OpenAI-compatible chat API over the chat backends, beside the UI or on its own.

Routes: `GET /v1/models`, `POST /v1/chat/completions` (plain, or streamed as server-sent events), and
`GET /web/`, the static chat page in `assets/web/` that talks to them. A model id `MODEL+docs:COLLECTION`
answers from a document collection and ends each answer with its numbered sources (core.documents). Errors use OpenAI's shape
(`{"error": {"message", "type", "param", "code"}}`) so the official `openai` client raises its usual
exceptions: 404 for an unknown model, 400 for bad parameters, 401 without credentials, 503 while a heavy
job holds the accelerator (G6).

`api_routes()` builds the routes for any FastAPI app; app.py passes them to Gradio's own app, so they
share its port, CORS policy and login. Standalone:

    python -m core.serve --model default [--adapter RUN/adapter | --gguf FILE.gguf] --port 8000
"""

from __future__ import annotations

import argparse
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

from core import inference
from core.errors import BadInputError, ChatsmithError, describe
from core.inference import GenerationSettings, ModelChoice
from core.workspace import Workspace

WEB_PAGE = Path(__file__).resolve().parent.parent / "assets" / "web" / "index.html"
ROLES = {"system", "user", "assistant"}
MAX_REQUEST_CHARS = 200_000  # a bound on what one request may make the server render and tokenize


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": None}}
        return JSONResponse(body, status_code=self.status)


def api_routes(workspace: Workspace, choices: Callable[[], list[ModelChoice]],
               authorized: Callable[[Request], bool] = lambda request: True,
               busy: Callable[[ModelChoice], str] = lambda choice: "") -> list:
    """The API's routes. `busy(choice)` names the heavy job that chat with `choice` must wait for, or ""."""
    router = APIRouter()

    def guarded(handler):
        def run(request: Request, *args):
            try:
                if not authorized(request):
                    raise ApiError(401, "Missing or wrong credentials.", "authentication_error")
                return handler(*args)
            except ApiError as error:
                return error.response()
        return run

    def list_models() -> JSONResponse:
        data = [{"id": c.id, "object": "model", "created": 0, "owned_by": "chatsmith", "description": c.label}
                for c in choices()]
        return JSONResponse({"object": "list", "data": data})

    def complete(body: dict) -> object:
        choice = _find_choice(choices(), body.get("model"))
        messages, settings, stream = parse_request(body)
        if reason := busy(choice):
            raise ApiError(503, f"{reason} is using the accelerator; chat waits until it finishes.",
                           "server_busy")
        try:
            backend = inference.open_backend(choice, workspace)
            messages, dropped = inference.fit_context(backend, messages, settings)
        except BadInputError as error:
            raise ApiError(400, str(error), param="messages") from error
        except ChatsmithError as error:
            raise ApiError(500, describe(error), "server_error") from error
        headers = {"X-Chatsmith-Dropped-Messages": str(dropped)}
        if stream:
            return StreamingResponse(_events(backend, messages, settings, choice.id), headers=headers,
                                     media_type="text/event-stream")
        return JSONResponse(_whole(backend, messages, settings, choice.id), headers=headers)

    @router.get("/v1/models")
    def models_route(request: Request):
        return guarded(list_models)(request)

    @router.post("/v1/chat/completions")
    async def completions_route(request: Request):
        if int(request.headers.get("content-length") or 0) > 4 * MAX_REQUEST_CHARS + 65536:
            return ApiError(413, "The request body is too large.").response()
        try:
            body = await request.json()
        except ValueError:
            return ApiError(400, "The request body must be JSON.").response()
        if not isinstance(body, dict):
            return ApiError(400, "The request body must be a JSON object.").response()
        return await run_in_threadpool(guarded(complete), request, body)  # generation blocks: off the loop

    @router.get("/web/")
    def web_page():
        return FileResponse(WEB_PAGE, media_type="text/html")

    return router.routes


def app_routes(workspace: Workspace, jobs, device_kind: Callable[[], str]) -> list:
    """The routes app.py serves beside the UI: every model the workspace has, Gradio's login, G6 busy."""
    from core.chat import must_wait

    def busy(choice: ModelChoice) -> str:
        job = must_wait(jobs, device_kind, choice)
        return f"'{job.title}'" if job else ""

    return api_routes(workspace, lambda: inference.list_choices(workspace), gradio_login, busy)


def parse_request(body: dict) -> tuple[list[dict], GenerationSettings, bool]:
    """Messages, settings and the stream flag from an OpenAI request body, or a 400 naming the field."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content}.", param="messages")
    plain = [_message(item, index) for index, item in enumerate(messages)]
    if sum(len(m["content"]) for m in plain) > MAX_REQUEST_CHARS:
        raise ApiError(400, f"The messages exceed {MAX_REQUEST_CHARS} characters.", param="messages")
    if body.get("n", 1) != 1:
        raise ApiError(400, "Only n=1 is supported.", param="n")
    defaults = GenerationSettings()
    fields = {"max_new_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or defaults.max_new_tokens,
              "temperature": body.get("temperature", defaults.temperature), "top_p": body.get("top_p", defaults.top_p),
              "top_k": body.get("top_k", defaults.top_k), "seed": body.get("seed") or 0,
              "repetition_penalty": body.get("repetition_penalty", defaults.repetition_penalty)}
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(400, f"'{name}' must be a number.", param=name)
    try:
        settings = GenerationSettings(**fields)
    except BadInputError as error:
        raise ApiError(400, str(error), param=str(error).split(" ", 1)[0]) from error
    return plain, settings, bool(body.get("stream", False))


def _message(item, index: int) -> dict:
    if not isinstance(item, dict) or item.get("role") not in ROLES:
        raise ApiError(400, f"messages[{index}] needs a role of {sorted(ROLES)}.", param=f"messages[{index}]")
    content = item.get("content")
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ApiError(400, f"messages[{index}].content must be text.", param=f"messages[{index}].content")
    return {"role": item["role"], "content": content}


def _find_choice(choices: list[ModelChoice], model) -> ModelChoice:
    from core.documents.grounding import DOCS_MARK, with_documents

    if isinstance(model, str) and DOCS_MARK in model:  # "MODEL+docs:COLLECTION": answers from that collection
        base, _, collection = model.partition(DOCS_MARK)
        return with_documents(_find_choice(choices, base), collection)
    for choice in choices:
        if choice.id == model:
            return choice
    known = ", ".join(choice.id for choice in choices)
    raise ApiError(404, f"The model '{model}' does not exist here. Known models: {known}.",
                   param="model") if model else ApiError(400, "'model' is required.", param="model")


def _whole(backend, messages: list[dict], settings: GenerationSettings, model: str) -> dict:
    usage: dict = {}
    text = "".join(backend.stream(messages, settings, usage=usage))
    finish = "length" if usage.get("completion_tokens", 0) >= settings.max_new_tokens else "stop"
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": finish}],
            "usage": {**usage, "total_tokens": sum(usage.values())}}


async def _events(backend, messages: list[dict], settings: GenerationSettings, model: str):
    """Server-sent events. Async, so a client that goes away cancels us here and we can stop decoding.

    Starlette never closes a plain generator when the client disconnects, so the model would decode
    for nobody and keep its lock; here cancellation reaches `finally`, which stops and closes it.
    """
    stop = threading.Event()
    events = _sse(backend, messages, settings, model, stop)
    try:
        while (event := await run_in_threadpool(next, events, None)) is not None:
            yield event
    finally:
        stop.set()
        events.close()


def _sse(backend, messages: list[dict], settings: GenerationSettings, model: str,
         stop: threading.Event) -> Iterator[str]:
    usage: dict = {}
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict, finish: str | None = None) -> str:
        payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        for piece in backend.stream(messages, settings, stop=stop, usage=usage):
            yield chunk({"content": piece})
        finish = "length" if usage.get("completion_tokens", 0) >= settings.max_new_tokens else "stop"
        yield chunk({}, finish)
        yield "data: [DONE]\n\n"
    except ChatsmithError as error:  # the status line is sent already: report in the stream
        yield f"data: {json.dumps({'error': {'message': describe(error), 'type': 'server_error'}})}\n\n"


def gradio_login(request: Request) -> bool:
    """Gradio's own login (session cookie), or `Authorization: Bearer USER:PASSWORD` for API clients."""
    app = request.app
    accounts = getattr(app, "auth", None)
    if not accounts:
        return True
    cookie_id = getattr(app, "cookie_id", "")
    token = (request.cookies.get(f"access-token-{cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
    if token and token in getattr(app, "tokens", {}):
        return True
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    user, _, password = bearer.partition(":")
    if isinstance(accounts, dict) and user in accounts:
        return secrets.compare_digest(str(accounts[user]), password)
    return callable(accounts) and bool(user) and bool(accounts(user, password))


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
        parser.error(f"--host {args.host} is reachable from the network: add --api-key (RELIABILITY G5).")
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
    key = f"Bearer {api_key}"
    authorized = (lambda request: secrets.compare_digest(request.headers.get("authorization", ""), key)) \
        if api_key else (lambda request: True)
    app = FastAPI(routes=api_routes(workspace, lambda: [choice], authorized), docs_url=None, redoc_url=None)
    print(f"Serving '{choice.id}' on http://{host}:{port}/v1 (chat page: http://{host}:{port}/web/)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
