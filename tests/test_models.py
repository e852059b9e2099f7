"""Model references: the default model materialises once, and unsafe or corrupt folders are refused."""

import json
import shutil

import pytest

from core import models
from core.errors import CorruptFileError, ModelNotFoundError, OfflineError, UnsafeModelError


@pytest.mark.slow
def test_default_model_materialises_as_a_normal_folder_that_loads_offline(default_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {path.name for path in default_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert not any(name.endswith(".partial") for name in names)
    assert "quantization_config" not in json.loads((default_model_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(default_model_dir)  # HF_HUB_OFFLINE=1 in conftest
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_the_default_tokenizer_is_built_from_the_gguf_once_and_then_read_from_its_folder(tmp_path):
    """transformers takes about 10 s of CPU to build the default model's tokenizer from its GGUF, which the Data
    stage needs to count tokens in every process (the app after a restart, the guided first run's job, the data
    command line); the first build is kept for the next process."""
    from transformers import AutoTokenizer

    gguf = models.packaged_gguf()
    chat = [{"role": "user", "content": "What is your name?"}, {"role": "assistant", "content": "Kestrel, 你好!"}]
    built = models.default_tokenizer()
    kept = next((tmp_path / "hf_home" / "chatsmith").glob("SmolLM2-135M-Instruct-tokenizer-*"))  # $HF_HOME: conftest
    read = models.default_tokenizer()
    from_gguf = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    for tokenizer in (built, read):
        assert tokenizer.apply_chat_template(chat) == from_gguf.apply_chat_template(chat)
        assert tokenizer.eos_token == from_gguf.eos_token == "<|im_end|>"
    # The kept folder is what later calls read: a template changed there shows in what they count.
    (kept / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }} and more{% endfor %}")
    assert models.default_tokenizer().apply_chat_template(chat, tokenize=False) == (
        "What is your name? and moreKestrel, 你好! and more")


def test_materialised_default_model_is_reused(workspace, tiny_model_dir):
    target = models.default_model_dir(workspace)
    shutil.copytree(tiny_model_dir, target)
    messages = []
    assert models.materialize_default_model(workspace, lambda f, m: messages.append(m)) == target
    assert messages == ["Default model ready."]
    assert models.resolve("default", workspace) == target


def test_local_folder_resolves(workspace, tiny_model_dir):
    assert models.resolve(str(tiny_model_dir), workspace) == tiny_model_dir


def test_pickle_only_folder_is_refused_before_unpickling(workspace, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"not even read")
    with pytest.raises(UnsafeModelError, match="pickle"):
        models.resolve(str(folder), workspace)


def test_remote_code_is_refused_unless_opted_in(workspace, tiny_model_dir, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsafeModelError, match="custom Python code"):
        models.resolve(str(folder), workspace)
    assert models.resolve(str(folder), workspace, trust_remote_code=True) == folder


@pytest.mark.parametrize("damage", ["truncate", "zero"])
def test_truncated_or_empty_safetensors_is_reported_corrupt(workspace, tiny_model_dir, tmp_path, damage):
    folder = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"")
    with pytest.raises(CorruptFileError, match="corrupt or incomplete"):
        models.resolve(str(folder), workspace)


@pytest.mark.slow
def test_truncated_gguf_is_reported_corrupt(tmp_path):
    gguf = models.packaged_gguf()
    broken = tmp_path / "broken.gguf"
    with open(gguf, "rb") as source:
        broken.write_bytes(source.read(5_000_000))
    models.verify_gguf(gguf)  # the packaged one is fine
    with pytest.raises(CorruptFileError, match="corrupt or incomplete"):
        models.verify_gguf(broken)


def test_uncached_hub_id_offline_says_so(workspace):
    with pytest.raises(OfflineError, match="not in the local Hugging Face cache"):
        models.resolve("someone/not-cached-model", workspace)


def test_nonsense_reference_is_explained(workspace):
    with pytest.raises(ModelNotFoundError, match="neither a local folder nor a Hub id"):
        models.resolve("not a model!", workspace)


def test_a_gguf_loads_as_the_model_it_was_made_from_building_each_name_table_once(tiny_model_dir, tmp_path,
                                                                                   monkeypatch):
    """Materialising the default model reads its GGUF through transformers, which rebuilt gguf's tensor-name
    table for every submodule of the model (a third of the 24 s that took). Each distinct table is now built
    once, and the model that comes out is still the one the file holds, ready to save."""
    import subprocess
    import sys

    import gguf
    import torch
    from transformers import AutoModelForCausalLM

    path = tmp_path / "tiny.gguf"
    subprocess.run([sys.executable, "-m", "convert_hf_to_gguf", "--outtype", "f32", str(tiny_model_dir),
                    "--outfile", str(path)], check=True, capture_output=True, timeout=300)
    built, original = [], gguf.get_tensor_name_map

    def counted(*args):
        built.append(args)
        return original(*args)

    monkeypatch.setattr(gguf, "get_tensor_name_map", counted)

    model = models.load_gguf_model(path)

    assert built and len(built) == len(set(built)), f"{len(built)} tables built for {len(set(built))} distinct ones"
    assert gguf.get_tensor_name_map is counted  # the library's own function is back
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    loaded = model.state_dict()
    assert set(loaded) == set(reference)
    assert all(torch.equal(loaded[name], reference[name]) for name in reference)  # f32: exact
    model.save_pretrained(tmp_path / "saved")  # transformers refuses while its GGUF quantizer marker is set
    assert (tmp_path / "saved" / "model.safetensors").is_file()
