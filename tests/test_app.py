"""The assembled app: five tabs, both languages complete, and the network-exposure lock."""

import pytest

import app
from core.workspace import Workspace
from tabs.common import AppContext


def test_build_app_has_the_five_tabs_and_the_system_panel(workspace):
    import gradio as gr

    demo = app.build_app(AppContext(workspace))
    tabs = [block for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert [tab.id for tab in tabs] == ["data", "train", "export", "chat", "evaluate"]
    assert any(isinstance(block, gr.Accordion) for block in demo.blocks.values())


def test_every_label_has_english_and_chinese():
    translations = app.translations().translations_dict
    assert set(translations) == {"en", "zh"}
    assert set(translations["en"]) == set(translations["zh"])
    assert all(value.strip() for value in translations["zh"].values())


@pytest.mark.parametrize("host,share,auth,locked", [
    ("127.0.0.1", False, None, False),
    ("localhost", False, None, False),
    ("0.0.0.0", False, None, True),
    ("192.168.1.5", False, None, True),
    ("127.0.0.1", True, None, True),
    ("0.0.0.0", False, ("me", "secret"), False),
])
def test_exposure_lock(host, share, auth, locked):
    assert bool(app.exposure_lock(host, share, auth)) is locked


def test_locked_context_refuses_heavy_features(workspace):
    from core.errors import LockedError

    ctx = AppContext(workspace, locked_reason=app.exposure_lock("0.0.0.0", False, None))
    with pytest.raises(LockedError, match="--auth"):
        ctx.require_unlocked("Training")


def test_workspace_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CHATSMITH_WORKSPACE", str(tmp_path / "from_env"))
    assert Workspace.resolve().root == (tmp_path / "from_env").resolve()
    assert Workspace.resolve(tmp_path / "explicit").root == (tmp_path / "explicit").resolve()
    assert (tmp_path / "explicit" / "datasets").is_dir() and (tmp_path / "explicit" / "runs").is_dir()


def test_client_names_resolve_only_inside_the_workspace(workspace, tmp_path):
    from core.errors import BadInputError

    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace.runs / "escape").symlink_to(outside, target_is_directory=True)
    (workspace.runs / "inside").symlink_to(workspace.datasets, target_is_directory=True)
    assert workspace.named(workspace.runs, "run-1", "run") == workspace.runs / "run-1"
    assert workspace.named(workspace.runs, "inside", "run") == workspace.runs / "inside"  # a link that stays in
    for name in ("", "  ", ".", "..", "../../X", "runs/../../X", "/etc", "~root", "a/b", "..\\..\\X", "escape"):
        with pytest.raises(BadInputError, match="run"):
            workspace.named(workspace.runs, name, "run")


def test_importing_the_app_tabs_and_core_loads_no_heavy_library():
    """The app starts fast because torch, transformers, TRL, PEFT and llama.cpp are imported inside the
    functions that need them: importing every module of app, tabs and core (a fresh interpreter) loads none."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    modules = ["app"] + sorted(".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                               for folder in ("tabs", "core") for path in (root / folder).rglob("*.py")
                               if path.name != "__main__.py" and "templates" not in path.parts)
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "    heavy = [m for m in ('torch', 'transformers', 'trl', 'peft', 'llama_cpp') if m in sys.modules]\n"
            "    if heavy:\n"
            "        sys.exit(f'importing {name} loaded {heavy}')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(modules) > 100


def test_the_page_is_served_before_anything_imports_torch(tmp_path, monkeypatch):
    """Detecting the device imports torch (seconds of work holding the interpreter lock), so it starts only once
    the page is served; so does warming the default chat model."""
    import gradio as gr

    import app
    from tabs.common import AppContext

    order = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: order.append("page served"))
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: None)
    monkeypatch.setattr(AppContext, "warm_up", lambda self: order.append("device detection"))
    monkeypatch.setattr(app, "warm_default", lambda workspace: order.append("model warm-up"))
    app.main(["--workspace", str(tmp_path / "workspace")])
    assert order == ["page served", "device detection", "model warm-up"]
