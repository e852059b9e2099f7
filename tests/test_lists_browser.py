"""In a real browser: the lists of models, datasets and runs follow what was made since the page loaded,
and after the guided first run Chat is on the model the journey made, not the base.

No model trains here: what a finished training, dataset save or export leaves on disk is placed in the
workspace while the page is open (the GGUF is the packaged default model's), and the journey's own job
folder is written as its worker writes it.
"""

from __future__ import annotations

import json
import os
import time

import psutil
import pytest

from core import atomic, journey
from core.models import packaged_gguf
from core.workspace import Workspace
from tests.browser import browser_page, require_chromium, running_app

pytestmark = pytest.mark.browser
JOURNEY_GGUF = f"{journey.RUN_NAME}/gguf/{journey.RUN_NAME}-Q8_0.gguf"


def place_gguf(workspace: Workspace, relative: str) -> None:
    path = workspace.exports / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(packaged_gguf(), path)


def place_run(workspace: Workspace, name: str) -> None:
    adapter = workspace.runs / name / "adapter"
    adapter.mkdir(parents=True)
    atomic.write_json(adapter / "adapter_config.json", {"base_model_name_or_path": "default"})
    (adapter / "adapter_model.safetensors").write_bytes(b"")  # listed, never loaded here
    (workspace.runs / name / "config.yaml").write_text("model: default\n", encoding="utf-8")


def place_dataset(workspace: Workspace, name: str) -> None:
    folder = workspace.datasets / name
    folder.mkdir(parents=True)
    atomic.write_json(folder / "dataset.json", {"created": time.time(), "name": name})
    row = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    (folder / "train.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")


def options_of(page, picker: str) -> list[str]:
    page.locator(f"{picker} input").click()
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return [name.strip() for name in names]


def test_opening_a_tab_lists_what_was_made_since_the_page_loaded(tmp_path):
    require_chromium()
    workspace = Workspace(tmp_path / "workspace").ensure()
    with running_app(workspace.root) as url, browser_page() as page:
        page.goto(url)
        page.get_by_role("tab", name="Chat").click()
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
        page.locator("#arena-contenders").get_by_label("run/later-run", exact=True).wait_for()
        page.get_by_role("tab", name="Export").click()
        page.wait_for_function("() => document.querySelector('#export-run input')?.value === 'later-run'")


def write_journey(workspace: Workspace, events: list[dict], state: str) -> None:
    """The journey's job folder as its worker leaves it; "running" names this process as the worker."""
    folder = journey.folder(workspace)
    atomic.write_json(folder / "job.json", {"kind": "journey", "title": "Guided first run", "created": 0,
                                            "target": journey.TARGET, "params": {}})
    me = psutil.Process()
    atomic.write_jsonl(folder / "events.jsonl", events)
    atomic.write_json(folder / "status.json", {"state": state, "step": len(events), "total": 5, "message": "",
                                               "pid": me.pid, "pid_started": me.create_time()})


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
