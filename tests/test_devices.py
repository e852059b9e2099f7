"""Capability gating for a simulated RTX 4090, Apple-silicon Mac and CPU box."""

import pytest

from core.devices import DeviceInfo, capabilities, detect
from tabs.common import gate_note

COMMON = dict(cpu_cores=16, ram_gb=64.0, bitsandbytes=True, llama_cpp=True, free_disk_gb=500.0)
RTX_4090 = DeviceInfo(kind="cuda", name="NVIDIA GeForce RTX 4090", accelerator_memory_gb=24.0,
                      compute_capability=(8, 9), bf16=True, **COMMON)
TURING = DeviceInfo(kind="cuda", name="Tesla T4", accelerator_memory_gb=16.0, compute_capability=(7, 5),
                    bf16=False, **COMMON)
MAC = DeviceInfo(kind="mps", name="Apple arm64 (Metal)", accelerator_memory_gb=32.0, compute_capability=None,
                 bf16=False, **COMMON)
CPU = DeviceInfo(kind="cpu", name="x86_64", accelerator_memory_gb=None, compute_capability=None, bf16=False,
                 **COMMON)


def test_4090_runs_everything():
    caps = capabilities(RTX_4090, offline=False)
    assert caps.qlora.ok and caps.bf16.ok and caps.fp16.ok and caps.large_models.ok and caps.hub.ok


def test_gpu_without_bf16_falls_back_to_fp16_and_says_so():
    caps = capabilities(TURING, offline=False)
    assert caps.qlora.ok and caps.fp16.ok
    assert not caps.bf16.ok and "fp16 is used instead" in caps.bf16.reason


def test_mac_has_lora_but_no_qlora_and_says_why():
    caps = capabilities(MAC, offline=False)
    assert caps.lora.ok and caps.fp16.ok
    assert not caps.qlora.ok and "NVIDIA GPU" in caps.qlora.reason


def test_cpu_trains_fp32_and_warns_about_large_models():
    caps = capabilities(CPU, offline=False)
    assert caps.lora.ok and not caps.qlora.ok and not caps.bf16.ok and not caps.fp16.ok
    assert "fp32" in caps.bf16.reason
    assert not caps.large_models.ok and "1B" in caps.large_models.reason


def test_cuda_without_bitsandbytes_explains_the_install():
    info = DeviceInfo(**{**RTX_4090.__dict__, "bitsandbytes": False})
    assert "bitsandbytes is not installed" in capabilities(info, offline=False).qlora.reason


def test_offline_disables_hub_with_reason_and_missing_llama_cpp_disables_gguf():
    info = DeviceInfo(**{**CPU.__dict__, "llama_cpp": False})
    caps = capabilities(info, offline=True)
    assert not caps.hub.ok and "HF_HUB_OFFLINE" in caps.hub.reason
    assert not caps.gguf_chat.ok and "llama-cpp-python" in caps.gguf_chat.reason


@pytest.mark.parametrize("gate_name", ["qlora", "bf16", "large_models"])
def test_greyed_out_controls_show_their_reason(gate_name):
    gate = getattr(capabilities(CPU, offline=False), gate_name)
    assert gate_note(gate).startswith("🚫") and gate.reason in gate_note(gate)


def test_detect_on_this_machine_finds_the_cpu(tmp_path):
    info = detect(tmp_path)
    assert info.kind == "cpu" and info.cpu_cores >= 1 and info.ram_gb > 0 and info.free_disk_gb > 0
    assert info.llama_cpp
