"""What this machine can run, decided once and shared by every tab.

`detect()` looks at the hardware (CUDA, Apple MPS or CPU), memory, disk and which native libraries
load. `capabilities()` turns that into one table of `Gate`s: each says whether a feature is available
here and, when it is not, why, in words the UI shows beside the greyed-out control. Tests build a
`DeviceInfo` by hand to simulate a 4090, a Mac or a CPU box.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "gradio", "llama_cpp_python",
             "huggingface_hub", "bitsandbytes")
CPU_LARGE_MODEL_PARAMS = 1.0e9  # above this, LoRA on a CPU takes hours per epoch


@dataclass(frozen=True)
class DeviceInfo:
    kind: str
    """"cuda", "mps" or "cpu": where training and transformers inference run."""
    name: str
    """The accelerator's or CPU's name, for display."""
    accelerator_memory_gb: float | None
    """Total VRAM (CUDA) or unified memory usable by MPS; None on a CPU."""
    compute_capability: tuple[int, int] | None
    """CUDA compute capability, e.g. (8, 9) for an RTX 4090."""
    bf16: bool
    """Whether bf16 arithmetic is native and fast on this device."""
    cpu_cores: int
    ram_gb: float
    bitsandbytes: bool
    """Whether the bitsandbytes package is installed (4-bit and 8-bit states; it runs on CUDA and on CPUs)."""
    llama_cpp: bool
    """Whether llama-cpp-python imports (GGUF chat and quantisation)."""
    free_disk_gb: float


@dataclass(frozen=True)
class Gate:
    ok: bool
    reason: str = ""
    """Why a feature is unavailable, or a caveat when it is available."""


@dataclass(frozen=True)
class Capabilities:
    lora: Gate
    qlora: Gate
    bf16: Gate
    fp16: Gate
    large_models: Gate
    gguf_chat: Gate
    gguf_quantize: Gate
    hub: Gate


def detect(workspace_root: str | os.PathLike = ".") -> DeviceInfo:
    """Inspect this machine. Imports torch, so call it off the UI's start-up path."""
    import psutil
    import torch

    kind, name, memory, capability, bf16 = "cpu", _cpu_name(), None, None, False
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        kind, name = "cuda", props.name
        memory = props.total_memory / 2**30
        capability = (props.major, props.minor)
        bf16 = torch.cuda.is_bf16_supported()
    elif torch.backends.mps.is_available():
        kind, name = "mps", f"Apple {platform.machine()} (Metal)"
        memory = psutil.virtual_memory().total / 2**30
    return DeviceInfo(
        kind=kind,
        name=name,
        accelerator_memory_gb=memory,
        compute_capability=capability,
        bf16=bf16,
        cpu_cores=os.cpu_count() or 1,
        ram_gb=psutil.virtual_memory().total / 2**30,
        bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
        llama_cpp=importlib.util.find_spec("llama_cpp") is not None,
        free_disk_gb=_free_disk_gb(workspace_root),
    )


def capabilities(info: DeviceInfo, offline: bool | None = None) -> Capabilities:
    """The one table of what runs here; every tab greys out controls from it."""
    offline = hub_offline() if offline is None else offline
    on_cuda, on_mps = info.kind == "cuda", info.kind == "mps"
    no_llama = "llama-cpp-python is not installed; run the README's set-up command."
    return Capabilities(
        lora=Gate(True, {"cuda": "", "mps": "LoRA in fp16 or fp32 on Apple silicon.",
                         "cpu": "LoRA in fp32 on the CPU: fine for small models, slow above ~1B."}[info.kind]),
        qlora=quantized_training(info),
        bf16=Gate(info.bf16, "" if info.bf16 else {
            "cuda": "This GPU has no native bf16 (needs compute capability 8.0+); fp16 is used instead.",
            "mps": "bf16 is not used on Apple silicon here; fp16 or fp32 instead.",
            "cpu": "bf16 is ~10x slower than fp32 on CPUs without native bf16; training uses fp32.",
        }[info.kind]),
        fp16=Gate(on_cuda or on_mps, "" if on_cuda or on_mps else
                  "fp16 mixed precision needs a GPU; the CPU trains in fp32."),
        large_models=Gate(info.kind != "cpu", "" if info.kind != "cpu" else
                          f"Models above {CPU_LARGE_MODEL_PARAMS / 1e9:.0f}B parameters train very "
                          "slowly on a CPU; pick a small model or use a GPU."),
        gguf_chat=Gate(info.llama_cpp, "" if info.llama_cpp else no_llama),
        gguf_quantize=Gate(info.llama_cpp, "" if info.llama_cpp else no_llama),
        hub=Gate(not offline, "" if not offline else
                 "Offline (HF_HUB_OFFLINE=1): Hub pushes are disabled; everything else works."),
    )


def quantized_runnable(info: DeviceInfo) -> Gate:
    """Whether bitsandbytes can hold 4-bit weights and 8-bit optimizer states here, worth it or not."""
    if info.kind == "mps":
        return Gate(False, "4-bit QLoRA is not offered on Apple silicon: the set-up installs bitsandbytes on Linux "
                           "and Windows only, and its Apple backend is untested here. Train plain LoRA (models up "
                           "to ~1.5B fit), or QLoRA on an NVIDIA GPU.")
    if not info.bitsandbytes:
        return Gate(False, "bitsandbytes is not installed; run the README's set-up command.")
    return Gate(True, "")


def quantized_training(info: DeviceInfo) -> Gate:
    """Whether the app offers 4-bit QLoRA and 8-bit optimizers here: a product decision, with its reason."""
    runnable = quantized_runnable(info)
    if runnable.ok and info.kind == "cpu":
        return Gate(False, QLORA_ON_CPU)
    return runnable


QLORA_ON_CPU = ("4-bit QLoRA is offered on NVIDIA GPUs only. bitsandbytes runs it on a CPU too, but on the default "
                "model it trained at 0.6-0.9× the speed of fp32 LoRA and peaked 5-21 % higher in RAM, not lower: the "
                "weights are a small part of what training holds, and loading quantises from full precision "
                "(bench/qlora_cpu_bench.py). Train plain LoRA in fp32 here.")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def system_snapshot(info: DeviceInfo, workspace_root: str | os.PathLike) -> dict[str, str]:
    """Live figures for the system panel: memory in use, free disk and library versions."""
    import psutil

    memory = psutil.virtual_memory()
    rows = {
        "Device": f"{info.kind.upper()} · {info.name}",
        "CPU cores": str(info.cpu_cores),
        "RAM in use": f"{(memory.total - memory.available) / 2**30:.1f} / {memory.total / 2**30:.1f} GiB",
        "Free disk": f"{_free_disk_gb(workspace_root):.1f} GiB in {Path(workspace_root)}",
    }
    if info.kind == "cuda":
        import torch

        free, total = torch.cuda.mem_get_info()
        rows["VRAM in use"] = f"{(total - free) / 2**30:.1f} / {total / 2**30:.1f} GiB"
    rows.update({name: _version(name) for name in LIBRARIES})
    return rows


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _free_disk_gb(path: str | os.PathLike) -> float:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 2**30


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"
