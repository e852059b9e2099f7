"""Who may call the app, from where, and how often; and who a rater is.

* `login_check(accounts)`: the API's check beside the UI. A request passes with Gradio's login cookie
  or `Authorization: Bearer USER:PASSWORD`. Whether a login is needed at all comes from the `--auth`
  accounts the app was started with, never from Gradio's internals, so a Gradio release that renames
  them makes cookies stop working (fail closed) instead of letting everyone in.
* `Backoff`: per client address, wrong passwords beyond a few free ones must wait, twice as long after
  each further failure. `LoginBackoff` applies it to Gradio's `POST /login`; the API applies the same
  instance to Bearer credentials, so switching between the two gains nothing.
* `origin_allowed`: a browser page may call the API only from a loopback origin or this server's own
  origin; requests without an Origin (curl, the SDKs) are not from a page and pass.
* `RaterCookie` / `rater_from_cookies`: an anonymous arena rater is a random id in an HMAC-signed,
  HttpOnly cookie set with the page, so a reload keeps the rater (and its rate limit and flag).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

RATER_COOKIE = "chatsmith-rater"
KEY_FILE = "signing.key"


# ---- logins -------------------------------------------------------------------------------------

def login_check(accounts: Mapping[str, str] | None) -> Callable[[object], bool]:
    """`authorized(request)` for the API beside the UI; everyone passes when `accounts` is empty."""
    if not accounts:
        return lambda request: True

    def authorized(request) -> bool:
        user, _, password = bearer(request).partition(":")
        if user in accounts:
            return secrets.compare_digest(accounts[user].encode(), password.encode())
        return gradio_cookie_user(request) in accounts

    return authorized


def bearer(request) -> str:
    header = request.headers.get("authorization", "")
    return header[len("Bearer "):].strip() if header.startswith("Bearer ") else ""


def gradio_cookie_user(request) -> str | None:
    """The user Gradio's login cookie names, read the way Gradio's own `get_current_user` does.

    These are Gradio internals (`App.tokens`, `App.cookie_id`); anything unexpected reads as no user.
    """
    tokens, cookie_id = getattr(request.app, "tokens", None), getattr(request.app, "cookie_id", None)
    if not isinstance(tokens, dict) or not isinstance(cookie_id, str) or not cookie_id:
        return None
    token = (request.cookies.get(f"access-token-{cookie_id}")
             or request.cookies.get(f"access-token-unsecure-{cookie_id}"))
    user = tokens.get(token) if token else None
    return user if isinstance(user, str) else None


# ---- backoff after wrong passwords --------------------------------------------------------------

@dataclass(frozen=True)
class BackoffSettings:
    """How fast one client address may guess passwords."""

    free_failures: int = 5
    """Wrong passwords an address may send before it has to wait (typos happen)."""
    first_wait_s: float = 1.0
    """The wait after the first failure past the free ones; each further failure doubles it."""
    max_wait_s: float = 60.0
    """The longest wait, so a person locked out by mistake is back within a minute."""
    forget_after_s: float = 900.0
    """An address with no failure for this long starts over."""
    max_addresses: int = 10_000
    """Addresses remembered at most (the least recent are forgotten first): a flood cannot fill memory."""


class Backoff:
    """Failures per client address; thread-safe, shared by the login route and the API."""

    def __init__(self, settings: BackoffSettings = BackoffSettings(), clock: Callable[[], float] = time.monotonic):
        self.settings, self.clock = settings, clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # address -> (count, last failure)
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        """Seconds before `address` may try again (0: now)."""
        with self._lock:
            count, last = self._current(address)
        extra = count - self.settings.free_failures
        if extra <= 0:
            return 0.0
        wait = min(self.settings.max_wait_s, self.settings.first_wait_s * 2 ** (extra - 1))
        return max(0.0, last + wait - self.clock())

    def failed(self, address: str) -> None:
        with self._lock:
            count, _ = self._current(address)
            self._failures[address] = (count + 1, self.clock())
            self._failures.move_to_end(address)
            while len(self._failures) > self.settings.max_addresses:
                self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _current(self, address: str) -> tuple[int, float]:
        count, last = self._failures.get(address, (0, 0.0))
        if count and self.clock() - last > self.settings.forget_after_s:
            del self._failures[address]
            return 0, 0.0
        return count, last


def too_many_failures(wait_s: float) -> tuple[str, dict[str, str]]:
    """The refusal's text and headers, the same for the login and the API."""
    seconds = max(1, round(wait_s + 0.49))
    return (f"Too many wrong passwords from your address; try again in {seconds} s.",
            {"Retry-After": str(seconds)})


class LoginBackoff:
    """ASGI middleware around Gradio's `POST /login` (which has no hook of its own): while the caller's
    address must wait it answers 429 without checking the password; Gradio's 400 (wrong credentials)
    counts as a failure, its 200 clears the address."""

    def __init__(self, app, backoff: Backoff, paths: tuple[str, ...] = ("/login", "/login/")):
        self.app, self.backoff, self.paths = app, backoff, paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            return await self.app(scope, receive, send)
        address = (scope.get("client") or ("unknown",))[0]
        if (wait := self.backoff.wait_s(address)) > 0:
            message, headers = too_many_failures(wait)
            return await _send_json(send, 429, {"detail": message}, headers)
        status = {}

        async def watched(event):
            if event["type"] == "http.response.start":
                status["code"] = event["status"]
            await send(event)

        await self.app(scope, receive, watched)
        if status.get("code") == 400:
            self.backoff.failed(address)
        elif status.get("code") == 200:
            self.backoff.succeeded(address)


# ---- cross-site requests ------------------------------------------------------------------------

def origin_allowed(origin: str | None, host: str | None) -> bool:
    """No Origin (not a browser page), a loopback origin, or this server's own origin (same host:port)."""
    if not origin:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # "null" (sandboxed frames, file:// pages) and anything odd
    if parts.hostname == "localhost" or _is_loopback(parts.hostname):
        return True
    return bool(host) and parts.netloc.lower() == host.lower()


def _is_loopback(hostname: str) -> bool:
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


# ---- raters -------------------------------------------------------------------------------------

def signing_key(root: Path) -> bytes:
    """The workspace's secret for signed cookies, made once (readable by the owner only) and kept, so a
    restart keeps every rater."""
    path = Path(root) / KEY_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    key = secrets.token_bytes(32)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key.hex())
    return key


def sign(value: str, key: bytes) -> str:
    return f"{value}.{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()}"


def rater_from_cookies(cookies: Mapping[str, str], key: bytes) -> str | None:
    """The rater id of a correctly signed rater cookie, else None."""
    value, _, signature = (cookies.get(RATER_COOKIE) or "").rpartition(".")
    if value and hmac.compare_digest(sign(value, key), f"{value}.{signature}"):
        return value
    return None


class RaterCookie:
    """ASGI middleware: the page (`GET /`) sets a signed rater cookie when the browser lacks a valid one."""

    def __init__(self, app, key: bytes, max_age_s: int = 365 * 24 * 3600):
        self.app, self.key, self.max_age_s = app, key, max_age_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/" \
                or rater_from_cookies(_cookies(scope), self.key):
            return await self.app(scope, receive, send)
        cookie = (f"{RATER_COOKIE}={sign(uuid.uuid4().hex, self.key)}; Max-Age={self.max_age_s}; Path=/; "
                  "HttpOnly; SameSite=Lax")

        async def with_cookie(event):
            if event["type"] == "http.response.start":
                event = {**event, "headers": [*event.get("headers", []), (b"set-cookie", cookie.encode())]}
            await send(event)

        await self.app(scope, receive, with_cookie)


def _cookies(scope) -> dict[str, str]:
    from http.cookies import SimpleCookie

    header = b"; ".join(value for name, value in scope.get("headers", []) if name == b"cookie")
    jar = SimpleCookie()
    try:
        jar.load(header.decode("latin-1"))
    except Exception:  # a malformed Cookie header is no rater cookie
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


async def _send_json(send, status: int, body: dict, headers: dict[str, str]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            *((name.lower().encode(), value.encode()) for name, value in headers.items())]})
    await send({"type": "http.response.body", "body": raw})
