"""The adapter package: adapter + tokenizer + model card + a standalone inference.py that chats."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from core.errors import BadInputError
from core.export.package import package_adapter
from core.export.run import open_run
from tests.export_helpers import make_run


@pytest.mark.slow
def test_package_holds_adapter_card_and_a_working_inference_script(workspace, tiny_model_dir):
    folder = make_run(workspace, tiny_model_dir)
    config = (folder / "config.yaml").read_text()
    (folder / "config.yaml").write_text(config + "hub_token: hf_CANARYshouldneverappear\n")
    with pytest.raises(BadInputError, match="Unknown training setting.*hub_token"):  # a token never rides along
        open_run(workspace, "run-1")
    (folder / "config.yaml").write_text(config)
    (workspace.datasets / "v-abc123").mkdir()
    (workspace.datasets / "v-abc123" / "stats.json").write_text('{"conversations": 212, "dropped": 3}')
    out = package_adapter(open_run(workspace, "run-1"))

    names = {path.name for path in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md",
            "inference.py"} <= names
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] == str(tiny_model_dir) and front["library_name"] == "peft"
    assert "v-abc123" in card and "conversations: 212" in card
    assert "loss: 2.1" in card and "eval_loss: 2.2" in card and "lora_rank: 4" in card

    chat = subprocess.run([sys.executable, "inference.py", "--max-new-tokens", "4"], cwd=out,
                          input="Hello there\n\n", capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "assistant>" in chat.stdout
