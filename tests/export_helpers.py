"""Shared by the export tests: a finished training run of the tiny model, made without training.

A real run would come from the Train stage; here the LoRA B matrices get small random values, so the
adapter changes the model's outputs and every export path has something to preserve.
"""

from __future__ import annotations

from pathlib import Path

from core.train import runs
from core.train.settings import TrainSettings
from core.workspace import Workspace


def make_run(workspace: Workspace, base_dir: Path, name: str = "run-1", seed: int = 0,
             scale: float = 0.5) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if "lora_B" in param_name:
                param.normal_(0.0, scale)
    folder = workspace.runs / name
    model.save_pretrained(folder / "adapter", safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(folder / "adapter")
    runs.write_config(folder, TrainSettings(model=str(base_dir), dataset=str(workspace.datasets / "v-abc123"),
                                            lora_rank=4, lora_alpha=8, target_modules="q_proj,k_proj,v_proj,o_proj",
                                            learning_rate=2e-4, epochs=1.0))
    (folder / "events.jsonl").write_text('{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.1, "eval_loss": 2.2}\n')
    (folder / "report.md").write_text("# Run report\nFinal loss 2.1.\n")
    return folder
