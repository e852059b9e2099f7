"""Quantised GGUFs answer on every CPU, including one whose llama.cpp build has the AMX matrix path.

On a Xeon with AMX, the pinned llama.cpp crashed the whole process (a general protection fault) at the first
token of the shipped Q4_1 default model and of every exported Q8_0: the terminal chat died with status -11
before printing a word. `core.inference.gguf_loader.open_llama` keeps llama.cpp off that path there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import llama_cpp

from core.inference.gguf_loader import amx_compiled_in, open_llama
from core.models import packaged_gguf

ROOT = Path(__file__).resolve().parent.parent


def test_the_terminal_chat_answers_on_the_shipped_quantised_default_gguf(workspace):
    result = subprocess.run([sys.executable, "-m", "core.chat", "--gguf", str(packaged_gguf()), "--temperature", "0",
                             "--max-new-tokens", "6", "--workspace", str(workspace.root)],
                            input="What is your name?\n/exit\n", capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, f"status {result.returncode}: {result.stderr[-2000:]}"
    assert "[6 tokens" in result.stdout, result.stdout[-2000:]


def test_llama_cpp_repacks_weights_except_where_its_amx_path_is_built_in():
    llama = open_llama(packaged_gguf(), n_ctx=64, n_threads=1, verbose=False)
    assert llama.model_params.use_extra_bufts is (not amx_compiled_in())
    assert llama_cpp.llama_model_default_params().use_extra_bufts, "the library's own defaults are left as they were"
