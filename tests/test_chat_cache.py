"""Loaded models are bounded: asking a live app's API for one GGUF after another keeps at most a few loaded
(the least recently used is closed), and a model that does not fit the free RAM evicts the others first."""

from __future__ import annotations

import shutil

import psutil
import pytest

from tests.browser import running_app
from tests.test_chat_backends import to_gguf
from tests.test_web_security import _post

pytestmark = pytest.mark.browser  # starts the real app


def mapped_ggufs(url: str) -> set[str]:
    """The GGUF files the app process has mapped into memory (llama.cpp mmaps a model while it is loaded)."""
    port = url.rsplit(":", 1)[1]
    app = next(child for child in psutil.Process().children(recursive=True)
               if "app.py" in " ".join(child.cmdline()) and port in child.cmdline())
    return {line.split()[-1] for line in open(f"/proc/{app.pid}/maps") if line.rstrip().endswith(".gguf")}


def test_distinct_ggufs_requested_through_the_api_stay_bounded(tmp_path, tiny_model_dir, monkeypatch):
    import json

    workspace = tmp_path / "ws"
    source = to_gguf(tiny_model_dir, tmp_path / "tiny.gguf")
    names = [f"model-{letter}.gguf" for letter in "abcd"]
    for name in names:
        (workspace / "exports" / "many").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, workspace / "exports" / "many" / name)
    monkeypatch.setenv("CHATSMITH_MAX_MODELS", "2")
    with running_app(workspace, ["--no-warm"]) as url:  # only the requested models in the cache
        for count, name in enumerate(names, start=1):
            body = {"model": f"gguf/many/{name}", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]}
            status, _, answer = _post(f"{url}/v1/chat/completions", json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
            assert status == 200, answer
            loaded = {path.rsplit("/", 1)[1] for path in mapped_ggufs(url)}
            assert loaded == set(names[max(0, count - 2):count])  # the two most recent; older ones closed


class Sized:
    def __init__(self, name: str, closed: list):
        self.name, self.closed = name, closed

    def close(self):
        self.closed.append(self.name)


def test_a_model_that_does_not_fit_the_free_ram_evicts_the_others_first():
    from core.inference.cache import BackendCache, CacheLimits

    closed: list[str] = []
    free = {"bytes": 1000}
    cache = BackendCache(lambda: CacheLimits(max_models=5, ram_share=0.5), lambda: free["bytes"])
    for name in "ab":
        cache.get(name, lambda name=name: Sized(name, closed), size_bytes=200)
        free["bytes"] -= 200
    assert cache.keys() == ["a", "b"] and closed == []
    cache.get("a", lambda: Sized("a again", closed), size_bytes=200)  # a hit: now the most recent
    cache.get("big", lambda: Sized("big", closed), size_bytes=450)  # budget (600 + 400) / 2 = 500
    assert closed == ["b", "a"] and cache.keys() == ["big"]
