"""Helpers for browser tests: start the app as the README does, drive it with Playwright + Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CHATSMITH_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing but CHATSMITH_REQUIRE_BROWSER is set")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(workspace: Path, extra_args: list[str] | None = None, timeout_s: float = 180.0):
    """`python app.py` on a free port; yields its base URL and stops it afterwards."""
    port = free_port()
    command = [sys.executable, "app.py", "--workspace", str(workspace), "--port", str(port), *(extra_args or [])]
    with running_server(command, ROOT, port, workspace.parent / f"app-{port}.log", timeout_s) as url:
        yield url


@contextlib.contextmanager
def running_server(command: list[str], cwd: Path, port: int, log_path: Path, timeout_s: float = 180.0,
                   env: dict[str, str] | None = None):
    """Start `command`, wait until http://127.0.0.1:port answers, yield that URL, stop it afterwards."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{command[1]} did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        if process.poll() is None:
            process.kill()


@contextlib.contextmanager
def browser_page(locale: str | None = None):
    """A Chromium page; `locale` (e.g. "zh-CN") sets the browser's language and its Accept-Language header."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
