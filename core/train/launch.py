"""Several GPUs: an `accelerate launch` config (FSDP or DeepSpeed ZeRO) and the command that uses it.

Contract: `accelerate_files(settings, run_name, strategy, gpus)` returns the YAML text of an accelerate
config and the shell command that runs the same training on `gpus` GPUs of one machine. The command
calls `python -m core.train CONFIG --direct --name RUN`, which trains inside each launched process
instead of handing the run to the job runner. The YAML is what `accelerate config` would write; the
tests load it with accelerate's own launcher validation.
"""

from __future__ import annotations

from typing import Any

import yaml

from core.errors import BadInputError
from core.train.settings import TrainSettings

STRATEGIES = ("fsdp", "deepspeed")


def accelerate_config(settings: TrainSettings, strategy: str, gpus: int) -> dict[str, Any]:
    if strategy not in STRATEGIES:
        raise BadInputError(f"Unknown multi-GPU strategy '{strategy}'.", "Pick fsdp or deepspeed.")
    if gpus < 2:
        raise BadInputError("Multi-GPU launch needs at least 2 GPUs.", "Train from the tab on one GPU instead.")
    mixed = "bf16" if settings.precision in ("auto", "bf16") else ("fp16" if settings.precision == "fp16" else "no")
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE", "machine_rank": 0, "num_machines": 1, "num_processes": gpus,
        "mixed_precision": mixed, "rdzv_backend": "static", "same_network": True, "use_cpu": False,
        "main_training_function": "main", "downcast_bf16": "no",
    }
    if strategy == "fsdp":
        config["distributed_type"] = "FSDP"
        config["fsdp_config"] = {
            # FSDP2 shards parameters per transformer block; LoRA's small trainable set fits its wrap policy.
            "fsdp_version": 2, "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": True, "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True, "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_activation_checkpointing": settings.gradient_checkpointing,
        }
    else:
        config["distributed_type"] = "DEEPSPEED"
        config["deepspeed_config"] = {
            # ZeRO-2 shards optimizer state and gradients: the usual sweet spot for LoRA.
            "zero_stage": 2, "gradient_accumulation_steps": settings.grad_accum, "gradient_clipping": 1.0,
            "offload_optimizer_device": "none", "offload_param_device": "none", "zero3_init_flag": False,
        }
    return config


def accelerate_files(settings: TrainSettings, run_name: str, strategy: str = "fsdp",
                     gpus: int = 2) -> tuple[str, str]:
    """(accelerate config YAML, the launch command that uses it)."""
    text = yaml.safe_dump(accelerate_config(settings, strategy, gpus), sort_keys=False)
    if settings.load_in_4bit and strategy == "fsdp":
        text = "# 4-bit QLoRA with FSDP needs bnb_4bit_quant_storage = the compute dtype.\n" + text
    command = (f"accelerate launch --config_file accelerate-{strategy}.yaml "
               f"-m core.train config.yaml --direct --name {run_name}-{gpus}gpu")
    return text, command
