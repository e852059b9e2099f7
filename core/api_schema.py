"""OpenAI's chat API shapes: a request body read into messages and settings, errors, finish reasons.

Contract: `parse_request(body, limits)` returns `(messages, GenerationSettings, stream)` or raises
`ApiError` with OpenAI's status and a message naming the bad field (400), the way OpenAI's own server
refuses it: `max_tokens: 0`, `"stream": "false"` (a string), a content part that is not text. `finish`
turns what a backend reported into OpenAI's `finish_reason` and `usage`. Knows no routes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastapi.responses import JSONResponse

from core.errors import BadInputError
from core.inference import GenerationSettings, ModelChoice

ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class ApiLimits:
    """What one request may cost. `from_env` reads `CHATSMITH_API_MAX_MESSAGES` and `CHATSMITH_API_BUDGET_S`."""

    max_request_chars: int = 200_000
    """Characters of message text per request: a bound on what the server renders and tokenises."""
    max_messages: int = 1000
    """Messages per request; chats that long are cut to the context window anyway."""
    budget_s: float = 300.0
    """Wall-clock seconds a request may take, waiting for the model included; then generation stops and
    the answer so far is returned with finish_reason "length"."""

    @classmethod
    def from_env(cls) -> "ApiLimits":
        defaults = cls()
        return cls(max_messages=int(os.environ.get("CHATSMITH_API_MAX_MESSAGES", defaults.max_messages)),
                   budget_s=float(os.environ.get("CHATSMITH_API_BUDGET_S", defaults.budget_s)))


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.headers = status, message, kind, param, headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": None}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def parse_request(body: dict, limits: ApiLimits = ApiLimits()) -> tuple[list[dict], GenerationSettings, bool]:
    """Messages, settings and the stream flag from an OpenAI request body, or a 400 naming the field."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content}.", param="messages")
    if len(messages) > limits.max_messages:
        raise ApiError(400, f"At most {limits.max_messages} messages per request ({len(messages)} sent).",
                       param="messages")
    plain = [_message(item, index) for index, item in enumerate(messages)]
    if sum(len(m["content"]) for m in plain) > limits.max_request_chars:
        raise ApiError(400, f"The messages exceed {limits.max_request_chars} characters.", param="messages")
    if body.get("n", 1) != 1:
        raise ApiError(400, "Only n=1 is supported.", param="n")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false.", param="stream")
    defaults = GenerationSettings()
    fields = {"max_new_tokens": _first_given(body, "max_completion_tokens", "max_tokens", defaults.max_new_tokens),
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
    return plain, settings, bool(stream)


def _first_given(body: dict, *names_then_default):
    """The first of these fields the body sets (0 included: it is refused later, not replaced)."""
    *names, default = names_then_default
    return next((body[name] for name in names if body.get(name) is not None), default)


def _message(item, index: int) -> dict:
    where = f"messages[{index}]"
    if not isinstance(item, dict) or item.get("role") not in ROLES:
        raise ApiError(400, f"{where} needs a role of {sorted(ROLES)}.", param=where)
    content = item.get("content")
    if isinstance(content, list):  # OpenAI content parts: only text parts fit these models
        for number, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"{where}.content[{number}] must be a text part: "
                                    '{"type": "text", "text": "..."}.', param=f"{where}.content")
        content = "".join(part["text"] for part in content)
    if not isinstance(content, str):
        raise ApiError(400, f"{where}.content must be text.", param=f"{where}.content")
    return {"role": item["role"], "content": content}


def find_choice(choices: list[ModelChoice], model) -> ModelChoice:
    from core.documents.grounding import DOCS_MARK, with_documents

    if isinstance(model, str) and DOCS_MARK in model:  # "MODEL+docs:COLLECTION": answers from that collection
        base, _, collection = model.partition(DOCS_MARK)
        return with_documents(find_choice(choices, base), collection)
    for choice in choices:
        if choice.id == model:
            return choice
    known = ", ".join(choice.id for choice in choices)
    raise ApiError(404, f"The model '{model}' does not exist here. Known models: {known}.",
                   param="model") if model else ApiError(400, "'model' is required.", param="model")


def finish(usage: dict, settings: GenerationSettings, timed_out: bool) -> tuple[str, dict]:
    """OpenAI's finish_reason and usage. A backend that knows why it stopped says so in `usage`;
    a request that ran out of time was cut short, like one that reached max_tokens."""
    reason = "length" if timed_out else usage.pop("finish_reason", None)
    completion = usage.get("completion_tokens", 0)
    reason = reason or ("length" if completion >= settings.max_new_tokens else "stop")
    prompt = usage.get("prompt_tokens", 0)
    return reason, {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
