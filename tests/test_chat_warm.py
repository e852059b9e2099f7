"""The default model loads in the background once the page is up, so the first question does not wait.

Never in a locked workspace (served to a network without a login): nothing heavy is prepared there.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.request

import pytest

from core import inference
from core.models import packaged_gguf
from tests.browser import running_app

LOADED = "Chat: the default model is loaded"


def default_loaded() -> bool:
    return ("gguf", packaged_gguf().resolve()) in inference._backends.keys()


@pytest.mark.slow
def test_warming_loads_the_default_model_into_the_chat_cache_but_not_when_locked(workspace, monkeypatch):
    from core.inference.cache import BackendCache
    from core.inference.warm import warm_default

    monkeypatch.setattr(inference, "_backends", BackendCache())  # empty, and other tests' models stay open
    said: list[str] = []
    locked = dataclasses.replace(workspace, locked_reason="Served to the network without a login.")
    assert warm_default(locked, said.append) is None and not default_loaded()
    warm_default(workspace, said.append).join(timeout=120)
    assert default_loaded() and said and said[0].startswith(LOADED)
    inference._backends.close_all()


@pytest.mark.browser  # starts the real app
def test_the_app_loads_the_default_model_after_the_page_is_served(tmp_path):
    workspace = tmp_path / "ws"
    with running_app(workspace) as url:
        log = next(workspace.parent.glob("app-*.log"))
        deadline = time.time() + 120
        while LOADED not in log.read_text() and time.time() < deadline:
            time.sleep(0.5)
        text = log.read_text()
        assert urllib.request.urlopen(url, timeout=10).status == 200
    assert LOADED in text and text.index("Running on local URL") < text.index(LOADED)
