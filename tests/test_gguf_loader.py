"""Quantised GGUFs answer on every CPU, including one whose llama.cpp build has the AMX matrix path, and a GGUF
llama.cpp refuses is explained.

On a Xeon with AMX, the pinned llama.cpp crashed the whole process (a general protection fault) at the first
token of the shipped Q4_1 default model and of every exported Q8_0: the terminal chat died with status -11
before printing a word. `core.inference.gguf_loader.open_llama` keeps llama.cpp off that path there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import llama_cpp
import pytest

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


def test_a_damaged_gguf_is_called_corrupt_and_a_whole_one_opens_without_being_parsed_first(tmp_path, monkeypatch):
    """llama.cpp refuses damaged files cleanly as it loads, so the slow examination in Python (gguf's reader: 3-4 s
    of CPU for the default model's vocabulary) runs only once it has: the first answer does not wait for it."""
    from core import inference, models
    from core.errors import CorruptFileError

    checked = []
    real_check = models.verify_gguf
    monkeypatch.setattr(models, "verify_gguf", lambda path: checked.append(path) or real_check(path))
    assert inference.gguf_backend(packaged_gguf()).count_tokens([{"role": "user", "content": "Hi"}]) > 0
    assert checked == []
    whole = packaged_gguf().read_bytes()
    for name, data in {"empty": b"", "header": whole[:100], "half": whole[: len(whole) // 2],
                       "last bytes cut": whole[:-64]}.items():
        broken = tmp_path / f"{name}.gguf"
        broken.write_bytes(data)
        with pytest.raises(CorruptFileError, match="corrupt or incomplete"):
            inference.gguf_backend(broken)
    assert len(checked) == 4


def test_a_whole_gguf_llama_cpp_cannot_load_is_not_called_corrupt(tmp_path):
    import gguf
    import numpy as np

    from core.errors import CapabilityError

    path = tmp_path / "future.gguf"
    writer = gguf.GGUFWriter(str(path), "an-architecture-from-the-future")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(CapabilityError, match="although the file is whole") as refused:
        open_llama(path, n_ctx=64, verbose=False)
    assert "newer than this llama.cpp" in refused.value.hint
