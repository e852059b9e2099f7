"""Settings, presets gated by device, pre-flight figures, run comparison and the multi-GPU launch config."""

from __future__ import annotations

import json

import pytest

from core.devices import DeviceInfo, capabilities
from core.errors import BadInputError, CapabilityError
from core.train import launch, preflight, runs
from core.train.recipe import oom_advice
from core.train.settings import APPLE_PRESET, CPU_PRESET, GPU_PRESET, PRESETS, TrainSettings, preset_gate, \
    preset_settings, resolve_precision, check_device, check_offered
from tests.train_helpers import tiny_settings, write_version


def _device(kind: str, memory: float | None = None, bf16: bool = False) -> DeviceInfo:
    names = {"cuda": "NVIDIA GeForce RTX 4090", "mps": "Apple M2 (Metal)", "cpu": "Intel Xeon"}
    return DeviceInfo(kind=kind, name=names[kind], accelerator_memory_gb=memory,
                      compute_capability=(8, 9) if kind == "cuda" else None, bf16=bf16, cpu_cores=2, ram_gb=24,
                      bitsandbytes=True, llama_cpp=True, free_disk_gb=50)


CUDA_4090, CUDA_T4 = _device("cuda", 24, bf16=True), _device("cuda", 16)
MAC, CPU = _device("mps", 32), _device("cpu")


@pytest.mark.parametrize("device,runnable", [
    (CUDA_4090, {GPU_PRESET, APPLE_PRESET, CPU_PRESET}),
    (CUDA_T4, {APPLE_PRESET, CPU_PRESET}),
    (MAC, {APPLE_PRESET, CPU_PRESET}),
    (CPU, {CPU_PRESET}),
])
def test_presets_are_gated_by_the_device_with_a_reason(device, runnable):
    gates = {name: preset_gate(name, capabilities(device, offline=True), device) for name in PRESETS}

    assert {name for name, gate in gates.items() if gate.ok} == runnable
    assert all(gate.reason for gate in gates.values() if not gate.ok)
    if device is CPU:
        assert "NVIDIA GPU" in gates[GPU_PRESET].reason and "CPU" in gates[APPLE_PRESET].reason
    if device is CUDA_T4:
        assert "20 GB" in gates[GPU_PRESET].reason


def test_precision_auto_follows_the_device():
    auto = TrainSettings()
    assert [resolve_precision(auto, d) for d in (CUDA_4090, CUDA_T4, MAC, CPU)] == ["bf16", "fp16", "fp32", "fp32"]


def test_4bit_runs_wherever_bitsandbytes_loads_but_the_tab_offers_it_on_cuda_only():
    qlora = TrainSettings(load_in_4bit=True, optimizer="paged_adamw_8bit")
    check_device(qlora, CPU)  # bitsandbytes trains NF4 on a CPU: the command line and the tests use it
    check_device(preset_settings(GPU_PRESET), CUDA_4090)
    with pytest.raises(CapabilityError, match="not offered on Apple silicon"):
        check_device(qlora, MAC)
    with pytest.raises(CapabilityError, match="not installed"):
        check_device(qlora, DeviceInfo(**{**CPU.__dict__, "bitsandbytes": False}))
    with pytest.raises(CapabilityError, match="NVIDIA GPUs only") as refused:
        check_offered(qlora, capabilities(CPU, offline=True))
    assert "the speed" in str(refused.value) and "RAM" in str(refused.value)  # the reason: speed against memory
    check_offered(qlora, capabilities(CUDA_4090, offline=True))
    check_offered(TrainSettings(), capabilities(CPU, offline=True))
    with pytest.raises(CapabilityError, match="fp16 mixed precision needs a GPU"):
        check_device(TrainSettings(precision="fp16"), CPU)


def test_settings_reject_bad_values_naming_the_field():
    with pytest.raises(BadInputError, match="'learning_rate'"):
        TrainSettings(learning_rate=5)
    with pytest.raises(BadInputError, match="'batching'"):
        TrainSettings(batching="zigzag")
    with pytest.raises(BadInputError, match="Unknown training setting.*lora_rnak"):
        TrainSettings.from_dict({"lora_rnak": 8})


def test_every_setting_is_documented():
    import ast
    import inspect

    from core.train import settings as module

    tree = ast.parse(inspect.getsource(module.TrainSettings))
    body = tree.body[0].body
    documented = {node.target.id for node, after in zip(body, body[1:])
                  if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)}
    assert documented == {field for field in TrainSettings.__dataclass_fields__}


def test_oom_advice_is_concrete():
    message, hint = oom_advice(TrainSettings(batch_size=8, max_length=1024), CUDA_4090)
    assert "GPU memory" in message
    assert "batch_size to 4" in hint and "max_length from 1024 to 512" in hint and "4-bit QLoRA" in hint


def test_preflight_counts_match_peft_and_give_eta_energy_and_cost(tiny_model_dir, workspace, version):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from core.train.recipe import lora_config

    settings = tiny_settings(tiny_model_dir, version, max_steps=0, epochs=2.0)
    plan = preflight.estimate(settings, workspace, CPU)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), lora_config(settings))
    trainable, total = peft_model.get_nb_trainable_parameters()

    assert (plan.trainable_params, plan.total_params) == (trainable, total - trainable)
    assert plan.train_rows == 40 and plan.total_steps == 20  # 40 rows / batch 4 × 2 epochs
    assert plan.memory["total"] > plan.memory["weights"] > 0 and plan.fits
    priced = preflight.with_probe(plan, tokens_per_s=100.0, watts=50.0, price_per_kwh=0.30, currency="EUR")
    assert priced.eta_s == pytest.approx(plan.real_tokens_per_epoch * 2 / 100.0)
    assert priced.energy_wh == pytest.approx(50.0 * priced.eta_s / 3600)
    assert priced.cost == pytest.approx(priced.energy_wh / 1000 * 0.30)
    assert "ETA" in preflight.card(priced) and "EUR" in preflight.card(priced)


def test_memory_estimate_shrinks_with_4bit_and_checkpointing():
    from core.train.shapes import mistral_7b_instruct_v03

    config = mistral_7b_instruct_v03()
    plain = TrainSettings(max_length=2048, batch_size=4, precision="bf16")
    full = preflight.memory_estimate(plain, preflight.count_parameters(config, plain), 2048, 1.0, "bf16")
    qlora_settings = preset_settings(GPU_PRESET)
    qlora = preflight.memory_estimate(qlora_settings, preflight.count_parameters(config, qlora_settings), 2048,
                                      1.0, "bf16")
    assert qlora["weights"] < full["weights"] / 3
    assert qlora["activations"] < full["activations"] / 5
    assert qlora["optimizer"] == pytest.approx(full["optimizer"] / 4, abs=0.01)  # 8-bit Adam against fp32
    assert 6 < qlora["total"] < 20  # a 7B QLoRA at seq 2048 fits a 24 GB card


def test_compare_overlays_curves_diffs_configs_and_tables_metrics(workspace):
    first, second = workspace.runs / "a", workspace.runs / "b"
    for folder, dataset, loss in ((first, "/d/identity", 1.5), (second, "/d/science", 2.5)):
        folder.mkdir()
        runs.write_config(folder, TrainSettings(dataset=dataset))
        (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in (
            {"step": 1, "loss": loss + 1, "learning_rate": 1e-4}, {"step": 2, "loss": loss, "eval_loss": loss + .1})))

    rows = runs.curves([first, second])
    assert {(r["run"], r["metric"]) for r in rows} >= {("a", "loss"), ("b", "loss"), ("a", "eval_loss")}
    assert runs.config_diff([first, second]) == [["dataset", "/d/identity", "/d/science"]]
    assert runs.metrics_table([first, second]) == [["a", 1.5, 1.6, None], ["b", 2.5, 2.6, None]]


@pytest.mark.parametrize("strategy", launch.STRATEGIES)
def test_generated_accelerate_config_is_accepted_by_accelerate(strategy, tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    text, command = launch.accelerate_files(preset_settings(GPU_PRESET), "run1", strategy, gpus=4)
    path = tmp_path / f"accelerate-{strategy}.yaml"
    path.write_text(text)

    config = load_config_from_file(str(path))  # raises on any key accelerate does not know
    assert config.num_processes == 4 and config.distributed_type.value == strategy.upper()
    args = launch_command_parser().parse_args(command.split()[2:])
    assert args.config_file == f"accelerate-{strategy}.yaml" and args.module
    assert args.training_script_args == ["config.yaml", "--direct", "--name", "run1-4gpu"]
