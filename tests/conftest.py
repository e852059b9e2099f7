"""Shared fixtures: an offline environment, a temp workspace per test, and a tiny local model.

Every test runs with the Hub switched off and its own workspace, so nothing leaks between tests and
nothing reaches the network. The tiny model is Llama-shaped (2 layers, width 32) with the default
model's real tokenizer and chat template, so templates, masks and exports behave as they do for real
while a training step takes milliseconds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_ENABLED": "False",
                   "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Browser tests start the app and Chromium, 10-30 s each: they count as slow too, so that
    `python -m pytest -m "not slow"` stays a loop of a few minutes. CI runs everything."""
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
    items[:] = _longest_modules_first(items)


def _longest_modules_first(items: list) -> list:
    """On several workers (pytest.ini: one per core, pytest-xdist) each worker takes one test module at a time,
    and a whole-journey proof that started last would run alone at the end. So modules go longest first,
    by what their markers say: the end-to-end proofs allowed half an hour or more, then modules with slow
    tests, then the rest. Within a module, and between modules of a kind, the order stays as collected."""
    def kind(item) -> int:
        timeout = item.get_closest_marker("timeout")
        if timeout and timeout.args and timeout.args[0] >= 1800:
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    ordered = sorted(modules.values(), key=lambda module: min(kind(item) for item in module))
    return [item for module in ordered for item in module]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test: its own HF cache and workspace env, so no state crosses tests."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("CHATSMITH_WORKSPACE", str(tmp_path / "workspace"))


@pytest.fixture
def workspace(tmp_path):
    from core.workspace import Workspace

    return Workspace(tmp_path / "workspace").ensure()


@pytest.fixture(scope="session")
def default_tokenizer_dir(tmp_path_factory) -> Path:
    """The default model's tokenizer and chat template, read from its packaged GGUF once per session."""
    from transformers import AutoTokenizer

    from core.models import packaged_gguf

    gguf = packaged_gguf()
    folder = tmp_path_factory.mktemp("default_tokenizer")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer_dir) -> Path:
    """A 2-layer, 32-wide Llama with the default model's tokenizer, saved as safetensors."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_64_dir(tmp_path_factory, default_tokenizer_dir) -> Path:
    """The tiny Llama at width 64: bitsandbytes' CPU inference kernel packs rows in blocks of 64 inputs, so
    a 32-wide layer (no real model has one) fails to evaluate in 4-bit."""
    from dataclasses import replace

    from tests.families import FAMILIES, build_family

    chatml = replace(FAMILIES["llama3"], template=None, bos="<|im_start|>", eos="<|im_end|>", added=())
    return build_family(chatml, default_tokenizer_dir, tmp_path_factory.mktemp("tiny_model_64"))


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory) -> Path:
    """The real default model materialised once per test run (about 20 s). Tests only read it, so
    the workers share one copy: materialising holds a file lock, and a worker that comes second waits for it."""
    from core.models import materialize_default_model
    from core.workspace import Workspace

    root = tmp_path_factory.getbasetemp()
    root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # the run's folder, above each worker's
    return materialize_default_model(Workspace(root / "default_ws").ensure())


@pytest.fixture(scope="session")
def shipped_documents(tmp_path_factory):
    """A workspace holding the collection "shipped": every document in assets/documents (en + zh), built once."""
    from core.documents import build_collection
    from core.workspace import Workspace

    workspace = Workspace(tmp_path_factory.mktemp("documents_ws")).ensure()
    files = sorted(p for p in (ROOT / "assets" / "documents").glob("*/*") if p.is_file())
    build_collection(workspace, files, "shipped")
    return workspace


@pytest.fixture
def version(workspace):
    """A small conversation dataset version in the workspace, as the Data stage writes one."""
    from tests.train_helpers import write_version

    return write_version(workspace.datasets / "v-samples")


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        if line and not line.startswith("-"):
            names.add(line.split("==")[0].split("[")[0].strip().lower().replace("-", "_"))
    return names


@pytest.fixture
def app_requirements_only(tmp_path) -> dict[str, str]:
    """An environment for a subprocess in which only the app's requirements import: every package that only
    requirements-test.txt adds (pytest, playwright, openai, ...) is shadowed by a module that raises ImportError,
    as on a machine set up with the README's set-up command."""
    blocked = tmp_path / "test_requirements_blocked"
    blocked.mkdir()
    test_only = _requirement_names(ROOT / "requirements-test.txt") - _requirement_names(ROOT / "requirements.txt")
    for module in test_only | {"_pytest"}:
        (blocked / f"{module}.py").write_text(f"raise ImportError('{module} is only in requirements-test.txt')\n")
    return {**os.environ, "PYTHONPATH": str(blocked)}
