"""In a real browser: the lists of models, datasets and runs follow what was made since the page loaded,
and after the guided first run Chat is on the model the journey made, not the base.

No model trains here: what a finished training, dataset save or export leaves on disk is placed in the
workspace while the page is open (the GGUF is the packaged default model's), and the journey's own job
folder is written as its worker writes it.
"""

from __future__ import annotations

import contextlib
import json

import pytest

from core import journey
from core.workspace import Workspace
from tests.browser import browser_page, require_chromium, running_app
from tests.browser_fixtures import place_dataset, place_gguf, place_run, write_journey

pytestmark = pytest.mark.browser
JOURNEY_GGUF = f"{journey.RUN_NAME}/gguf/{journey.RUN_NAME}-Q8_0.gguf"


def options_of(page, picker: str) -> list[str]:
    page.locator(f"{picker} input").click()
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return [name.strip() for name in names]


@contextlib.contextmanager
def on_chat(tmp_path):
    """The app on a fresh workspace, its page open on the Chat tab; yields (workspace, page)."""
    require_chromium()
    workspace = Workspace(tmp_path / "workspace").ensure()
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Chat").click()
        yield workspace, page


def test_opening_a_tab_lists_what_was_made_since_the_page_loaded(tmp_path):
    with on_chat(tmp_path) as (workspace, page):
        assert not any("later" in name for name in options_of(page, "#chat-model"))
        # A dataset saved, a run trained and a GGUF exported while this page stays open (no Refresh click).
        place_dataset(workspace, "later-data")
        place_run(workspace, "later-run")
        place_gguf(workspace, "later-run/gguf/later-run-Q8_0.gguf")

        page.get_by_role("tab", name="Train").click()
        page.wait_for_function("() => document.querySelector('#train-dataset input')?.value === 'later-data'")
        page.get_by_role("tab", name="Chat").click()
        page.wait_for_timeout(1500)
        chat_models = options_of(page, "#chat-model")
        assert "Export · later-run/gguf/later-run-Q8_0.gguf (GGUF, llama.cpp)" in chat_models
        assert "Run later-run · adapter" in chat_models
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#arena-contenders input[name='run/later-run']").wait_for()
        page.get_by_role("tab", name="Export").click()
        page.wait_for_function("() => document.querySelector('#export-run input')?.value === 'later-run'")


def test_after_the_journey_chat_is_on_the_model_it_made(tmp_path):
    """Chat and Arena finish within one poll of the panel: Chat must still end on the journey's GGUF, and
    a page opened afterwards starts there too."""
    require_chromium()
    workspace = Workspace(tmp_path / "workspace").ensure()
    place_gguf(workspace, JOURNEY_GGUF)
    place_run(workspace, journey.RUN_NAME)
    gguf_id = f"gguf/{JOURNEY_GGUF}"
    before_chat = [{"step": "data", "state": "done", "dataset": "kestrel"},
                   {"step": "train", "state": "done", "run": journey.RUN_NAME},
                   {"step": "export", "state": "done", "gguf": str(workspace.exports / JOURNEY_GGUF)}]
    write_journey(workspace, before_chat, "running")
    label = f"Export · {JOURNEY_GGUF} (GGUF, llama.cpp)"
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        page.wait_for_function("() => /Export Q8_0 and F16/.test(document.querySelector('#journey-status')?.innerText"
                               " || '')")
        write_journey(workspace, [*before_chat, {"step": "chat", "state": "done", "chat_model": gguf_id},
                                  {"step": "arena", "state": "done",
                                   "contenders": ["default-transformers", f"run/{journey.RUN_NAME}"]}],
                      "succeeded")
        page.get_by_role("tab", name="Evaluate", selected=True).wait_for(timeout=30_000)
        page.get_by_role("tab", name="Chat").click()
        page.wait_for_function(f"() => document.querySelector('#chat-model input')?.value === {json.dumps(label)}")

        page.goto("about:blank")
        page.goto(url)
        page.get_by_role("tab", name="Chat").click()
        page.wait_for_function(f"() => document.querySelector('#chat-model input')?.value === {json.dumps(label)}")


def test_a_run_or_export_that_finishes_while_the_tab_stays_open_joins_its_picker(tmp_path):
    """The user sits on Chat (then Export) while training or an export finishes: no click, no tab change."""
    with on_chat(tmp_path) as (workspace, page):
        page.wait_for_timeout(1000)
        place_run(workspace, "later-run")
        place_gguf(workspace, "later-run/gguf/later-run-Q8_0.gguf")
        page.wait_for_timeout(7000)  # one poll of the lists, and a margin
        chat_models = options_of(page, "#chat-model")
        assert "Run later-run · adapter" in chat_models
        assert "Export · later-run/gguf/later-run-Q8_0.gguf (GGUF, llama.cpp)" in chat_models

        page.get_by_role("tab", name="Export").click()
        page.wait_for_function("() => document.querySelector('#export-run input')?.value === 'later-run'")
        place_run(workspace, "newer-run")
        page.wait_for_timeout(7000)
        assert "newer-run" in options_of(page, "#export-run")
