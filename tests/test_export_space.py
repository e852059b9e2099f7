"""The chat-demo Space bundle: allow-list, front-matter, and the CPU Space answering in a browser."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import yaml

from core import atomic
from core.errors import BadInputError
from core.export import gguf, merge, space
from core.export.run import open_run
from core.workspace import Workspace
from tests.browser import browser_page, free_port, running_server, screenshot
from tests.export_helpers import make_run

CANARY = "hf_CANARYabcdefghijklmnopqrstuvwxyz"


@pytest.fixture(scope="module")
def run_with_gguf(tmp_path_factory, tiny_model_dir):
    workspace = Workspace(tmp_path_factory.mktemp("space_ws")).ensure()
    folder = make_run(workspace, tiny_model_dir)
    # Things that must never reach a Space, left where a careless bundler would pick them up.
    (folder / ".env").write_text(f"HF_TOKEN={CANARY}\n")
    (folder / "ratings.sqlite").write_bytes(b"SQLite format 3\0")
    (folder / "checkpoint-2").mkdir()
    (folder / "adapter" / ".env").write_text(f"HF_TOKEN={CANARY}\n")
    run = open_run(workspace, "run-1")
    manifest = gguf.export(merge.merge_run(workspace, run), run.exports / "gguf", run.name, ["Q8_0"])
    return run, run.exports / "gguf" / manifest["files"]["Q8_0"]["file"]


@pytest.mark.parametrize("target", ["cpu", "zerogpu"])
def test_bundle_holds_only_allow_listed_files_and_parsable_front_matter(run_with_gguf, target):
    run, q8 = run_with_gguf
    out = space.build_space(run, space.SpaceSettings(target=target, gguf=q8, model_repo="me/model"))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    model_files = [q8.name] if target == "cpu" else [f"adapter/{n}" for n in
                                                     ("adapter_config.json", "adapter_model.safetensors",
                                                      "chat_template.jinja", "tokenizer.json",
                                                      "tokenizer_config.json")]
    # plus the marker that lets a later export replace the folder (never pushed: the upload ignores it)
    assert sorted(files) == sorted([atomic.MARKER, "README.md", "app.py", "requirements.txt", *model_files])
    assert not any(CANARY.encode() in (out / name).read_bytes() for name in files)

    readme = (out / "README.md").read_text()
    front = yaml.safe_load(readme.split("---")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
    for key in ("sdk_version", "python_version"):
        assert isinstance(front[key], str) and f'{key}: "{front[key]}"' in readme
    app = (out / "app.py").read_text()
    assert ("@gpu" in app and "spaces.GPU" in app) if target == "zerogpu" else "Llama(" in app
    assert "ChatInterface" in app
    requirements = (out / "requirements.txt").read_text()
    assert ("llama-cpp-python==" in requirements) if target == "cpu" else ("peft==" in requirements)


def test_a_file_outside_the_allow_list_stops_the_build(tmp_path):
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / ".env").write_text(f"HF_TOKEN={CANARY}\n")
    with pytest.raises(BadInputError, match="allow-list"):
        space.check_bundle(tmp_path, {"app.py"})
    (tmp_path / ".env").unlink()
    (tmp_path / "app.py").write_text(f"TOKEN = '{CANARY}'\n")
    with pytest.raises(BadInputError, match="token"):
        space.check_bundle(tmp_path, {"app.py"})


@pytest.mark.browser
@pytest.mark.parametrize("target", ["cpu", "zerogpu"])
def test_generated_space_answers_in_a_browser(run_with_gguf, target):
    """`python app.py` in the bundle; the ZeroGPU app falls back to the CPU where `spaces` is missing."""
    run, q8 = run_with_gguf
    out = space.build_space(run, space.SpaceSettings(target=target, gguf=q8))
    with _running_space(out) as url, browser_page() as page:
        page.goto(url)
        box = page.get_by_role("textbox").first
        box.fill("Hello!")
        box.press("Enter")
        page.wait_for_function(  # the pending "…" bubble has no message-content; a real answer does
            "() => [...document.querySelectorAll('[data-testid=\"bot\"] .message-content')]"
            ".some(el => el.innerText.trim().length > 0)")
        screenshot(page, f"export-space-{target}")
        assert page.locator("[data-testid='bot'] .message-content").last.inner_text().strip()


@contextlib.contextmanager
def _running_space(folder: Path, timeout_s: float = 180.0):
    """`python app.py` in the Space's folder, as the Space runs it; gradio reads the port from the env."""
    port = free_port()
    env = {"GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    with running_server([sys.executable, "app.py"], folder, port, folder.parent / f"space-{port}.log",
                        timeout_s, env) as url:
        yield url
