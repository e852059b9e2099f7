"""GGUF export of the tiny model: llama.cpp's converter, Q8_0, stop tokens, Modelfile, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import CorruptFileError
from core.export import gguf, merge
from core.export.run import open_run
from core.inference.gguf_loader import open_llama
from core.workspace import Workspace
from tests.export_helpers import make_run


@pytest.fixture(scope="module")
def merged_dir(tmp_path_factory, tiny_model_dir) -> Path:
    workspace = Workspace(tmp_path_factory.mktemp("gguf_ws")).ensure()
    make_run(workspace, tiny_model_dir)
    return merge.merge_run(workspace, open_run(workspace, "run-1"))


@pytest.fixture(scope="module")
def exported(merged_dir) -> tuple[Path, dict]:
    out = merged_dir.parent / "gguf"
    return out, gguf.export(merged_dir, out, "run-1", ["F16", "Q8_0"])


def _tensor_data(path: Path) -> dict[str, tuple[str, bytes]]:
    from gguf import GGUFReader

    return {t.name: (t.tensor_type.name, t.data.tobytes()) for t in GGUFReader(path).tensors}


@pytest.mark.slow
def test_q8_is_quantised_from_a_lossless_f32_not_from_f16(exported, merged_dir, tmp_path):
    """Rounding to F16 first and then to Q8_0 changed answers of the real model; the app must not."""
    out, manifest = exported
    app_q8 = out / manifest["files"]["Q8_0"]["file"]
    kept = gguf.export(merged_dir, tmp_path, "kept", ["F16"], keep_intermediate=True)["files"]["F32"]
    from_f32 = gguf.quantize(tmp_path / kept["file"], "Q8_0", tmp_path / "from-f32.gguf")
    assert app_q8.read_bytes() == from_f32.read_bytes()
    # The F16 deliverable holds the converter's F16 weights: quantising it is the old, double-rounded path.
    from_f16 = gguf.quantize(out / manifest["files"]["F16"]["file"], "Q8_0", tmp_path / "from-f16.gguf")
    old, new = _tensor_data(from_f16), _tensor_data(app_q8)
    assert {k: v[0] for k, v in old.items()} == {k: v[0] for k, v in new.items()}, "same tensor types"
    assert old != new, "the double-rounded Q8_0 differs in its weights; the app's must be the single-rounded one"
    assert {entry["source"] for entry in manifest["files"].values()} == {"F32"}
    assert not list(out.glob("*F32*")), "the intermediate is deleted unless asked for"


def test_lossless_type_follows_the_merged_weights(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    assert gguf.lossless_type(tiny_model_dir) == "f32"
    for dtype, expected in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=dtype).save_pretrained(tmp_path / expected)
        assert gguf.lossless_type(tmp_path / expected) == expected


def test_q8_gguf_loads_in_llama_cpp_and_produces_tokens(exported):
    out, manifest = exported
    llama = open_llama(out / manifest["files"]["Q8_0"]["file"], n_ctx=256, n_threads=1, verbose=False)
    answer = llama.create_chat_completion([{"role": "user", "content": "Hello"}], max_tokens=6,
                                          temperature=0.0)
    assert answer["usage"]["completion_tokens"] > 0
    assert answer["choices"][0]["message"]["content"].strip()


def test_every_gguf_carries_the_chat_template_and_its_stop_token(exported):
    out, manifest = exported
    for quant, entry in manifest["files"].items():
        metadata = gguf.check_metadata(out / entry["file"])
        assert "<|im_start|>" in metadata["chat_template"], quant
        assert metadata["stop"] == "<|im_end|>"
        modelfile = (out / entry["file"]).with_suffix(".Modelfile").read_text()
        assert modelfile.startswith(f"FROM ./{entry['file']}\n")
        assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert not list(out.glob(".*partial")), "no partial files may remain"


def test_size_estimates_are_close_and_small_models_get_q8(exported, tiny_model_dir):
    out, manifest = exported
    for entry in manifest["files"].values():
        assert 0.7 < entry["estimated_bytes"] / entry["bytes"] < 1.3
    estimate = gguf.plan(tiny_model_dir)
    assert estimate.recommended == "Q8_0"
    assert "small" in estimate.reason and "Q4_K_M" in estimate.reason
    assert estimate.sizes["Q4_K_M"] < estimate.sizes["Q8_0"] < estimate.sizes["F16"]


def test_recommendation_follows_the_model():
    assert gguf.recommend(135_000_000, 180, 272)[0] == "Q8_0"
    assert gguf.recommend(2_000_000_000, 0, 200)[0] == "Q5_K_M"
    assert gguf.recommend(8_000_000_000, 0, 300)[0] == "Q4_K_M"


def test_truncated_gguf_is_reported_corrupt(exported, tmp_path):
    out, manifest = exported
    data = (out / manifest["files"]["Q8_0"]["file"]).read_bytes()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="corrupt or incomplete"):
        gguf.check_metadata(broken)
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(CorruptFileError, match="corrupt or incomplete"):
        gguf.check_metadata(tmp_path / "empty.gguf")


def test_failed_quantisation_leaves_no_file(tmp_path):
    source = tmp_path / "not-a-model.gguf"
    source.write_bytes(b"GGUF" + b"\0" * 64)
    target = tmp_path / "out-Q8_0.gguf"
    with pytest.raises(merge.ExportCheckError, match="could not quantise"):
        gguf.quantize(source, "Q8_0", target)
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.slow
def test_model_without_chat_template_is_refused(tmp_path, tiny_model_dir):
    import shutil

    folder = tmp_path / "no_template"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = (folder / "tokenizer_config.json")
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    with pytest.raises(merge.ExportCheckError, match="no chat template"):
        gguf.export(folder, tmp_path / "out", "x", ["F16"])
