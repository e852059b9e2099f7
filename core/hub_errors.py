"""What a failed Hugging Face Hub call means, read from huggingface_hub's own exception classes, once.

Contract: `hub_error(error, what, token, ...)` turns any exception from a Hub call into a
`ChatsmithError` a person can act on: 401 / 403 a token that is invalid or lacks write access, 402 a
Space type that needs a paid plan, 429 / 5xx a busy Hub, an unreachable Hub an `OfflineError`, anything
else its first line. The token never appears in a message. `status(error)` is the HTTP status of a Hub
answer (or None) and `BUSY` the statuses worth retrying, for callers that retry.

huggingface_hub raises `HfHubHTTPError` (with the response) for an answer, `OfflineModeIsEnabled` in
offline mode, and its HTTP client's own network errors and timeouts unwrapped: that client is `httpx2`,
so those are matched by httpx2's classes.
"""

from __future__ import annotations

from core.errors import ChatsmithError, OfflineError

BUSY = frozenset({429, 500, 502, 503, 504})
WRITE_TOKEN = "Create a token with the 'write' role at https://huggingface.co/settings/tokens and paste it again."


def status(error: BaseException) -> int | None:
    """The HTTP status the Hub answered with, or None when there was no answer."""
    from huggingface_hub.errors import HfHubHTTPError

    response = error.response if isinstance(error, HfHubHTTPError) else None
    return None if response is None else response.status_code


def unreachable(error: BaseException) -> bool:
    """The Hub was never reached: offline mode, no network, or a timeout."""
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    return isinstance(error, (OfflineModeIsEnabled, httpx2.NetworkError, httpx2.TimeoutException))


def hub_error(error: BaseException, what: str, token: str, kind: type[ChatsmithError] = ChatsmithError,
              token_advice: str = WRITE_TOKEN, keep: str = "", retries: int = 0) -> ChatsmithError:
    """`error` as a message starting with `what`; `keep` says what the user keeps and how to resume."""
    code = status(error)
    then = f" {keep}" if keep else ""
    if code in (401, 403):
        return kind(f"{what}: the Hub refused the token (HTTP {code}): token invalid or lacks write access.",
                    token_advice + then)
    if code == 402:
        return kind(f"{what}: refused (HTTP 402): this Space type needs a paid plan or ZeroGPU.",
                    "Pick the CPU target, or use an account with ZeroGPU access." + then)
    if code in BUSY:
        tried = f" after {retries} retries" if retries else ""
        return kind(f"{what}: the Hub is busy or failing (HTTP {code}){tried}.", "Wait a few minutes and try again."
                    + then)
    if code is None and unreachable(error):
        return OfflineError(f"{what}: the Hugging Face Hub could not be reached.",
                            "Check the internet connection and try again." + then)
    text = str(error).replace(token, "hf_***") if token else str(error)
    detail = (text.strip() or type(error).__name__).splitlines()[0][:300]
    return kind(f"{what} (HTTP {code}): {detail}" if code else f"{what}: {detail}", keep)
