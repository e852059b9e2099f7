"""QLoRA end to end on a CPU: the tiny model trained in 4-bit NF4 through the real recipe and job runner,
stopped and resumed, then merged at full precision, exported to GGUF, chatted with and put in the arena.

bitsandbytes loads NF4 on a CPU, so none of this needs CUDA; only the speed and the paged optimizer do.
"""

from __future__ import annotations

import pytest

from core.devices import detect
from core.jobs import JobRunner, State, read_events
from core.masks import lint_masks
from core.train import preflight, runs
from core.train.data import load_splits
from core.train.start import start_run
from core.workspace import Workspace
from tests.train_helpers import tiny_settings, write_version
from tests.waiting import wait_for

pytestmark = pytest.mark.slow  # real training in job workers, about a minute on a busy 2-core box
RUN = "qlora-run"


@pytest.fixture(scope="module")
def qlora_run(tmp_path_factory, tiny_model_64_dir) -> dict:
    """A QLoRA run as the Train tab makes one: check, start, Stop after two logged steps, Resume to the end."""
    from transformers import AutoTokenizer

    workspace = Workspace(tmp_path_factory.mktemp("qlora_ws")).ensure()
    version = write_version(workspace.datasets / "v-qlora")
    settings = tiny_settings(tiny_model_64_dir, version, load_in_4bit=True, max_steps=8, save_steps=1000, lora_rank=4,
                             batch_size=2, eval_steps=4)
    records, _ = load_splits(version, settings.eval_share, settings.seed)
    lint = lint_masks(AutoTokenizer.from_pretrained(tiny_model_64_dir), [r["messages"] for r in records[:32]])
    card = preflight.card(preflight.estimate(settings, workspace, detect(workspace.root)))

    jobs, run_dir = JobRunner(workspace), workspace.runs / RUN
    start_run(workspace, jobs, settings, folder=run_dir)  # what the tab's Start button does
    assert wait_for(lambda: sum("loss" in e for e in read_events(run_dir)) >= 2, timeout=240)
    jobs.request_stop(run_dir)  # what the tab's Stop button does
    stopped = jobs.wait(run_dir, timeout_s=120)
    stopped_events = read_events(run_dir)
    start_run(workspace, jobs, runs.read_config(run_dir), folder=run_dir, resume=True)  # and its Resume
    resumed = jobs.wait(run_dir, timeout_s=240)
    return {"workspace": workspace, "run_dir": run_dir, "lint": lint, "card": card, "stopped": stopped,
            "stopped_events": stopped_events, "resumed": resumed, "base": tiny_model_64_dir}


def test_qlora_trains_in_4bit_stops_and_resumes_through_the_job_runner(qlora_run):
    run_dir, stopped, resumed = qlora_run["run_dir"], qlora_run["stopped"], qlora_run["resumed"]
    assert qlora_run["lint"].end_of_turn_trained and qlora_run["lint"].trained_share > 0.1
    assert "4-bit NF4 weights" in qlora_run["card"] and "optimizer states" in qlora_run["card"]

    assert stopped.state is State.STOPPED, stopped.error
    stop_step = stopped.result["stopped_at"]
    assert resumed.state is State.SUCCEEDED, resumed.error
    log = (run_dir / "log.txt").read_text()
    assert log.count("base in 4-bit NF4") == 2  # both sessions trained on the NF4 base, not a silent fp32 one
    assert f"resuming from checkpoint-{stop_step}" in log
    steps = [e["step"] for e in read_events(run_dir) if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    assert min(s for s in steps if s > stop_step) == stop_step + 1  # the curve continues, no restart at 1
    losses = [e["loss"] for e in read_events(run_dir) if "loss" in e]
    assert losses[-1] < losses[0]
    adapter = run_dir / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "chat_template.jinja").is_file()
    assert runs.read_config(run_dir).load_in_4bit


def test_lora_weights_are_fp32_on_a_cpu_run(qlora_run):
    from safetensors.torch import load_file

    import torch

    weights = load_file(qlora_run["run_dir"] / "adapter" / "adapter_model.safetensors")
    assert weights and {tensor.dtype for tensor in weights.values()} == {torch.float32}


@pytest.fixture(scope="module")
def qlora_exports(qlora_run) -> dict:
    """The Export tab's path for the QLoRA run: merge, F16 GGUF, round-trip report."""
    from core.export import gguf, merge, roundtrip
    from core.export.run import open_run

    workspace = qlora_run["workspace"]
    run = open_run(workspace, RUN)
    merged = merge.merge_run(workspace, run)
    manifest = gguf.export(merged, run.exports / "gguf", run.name, ["F16"])
    files = {quant: run.exports / "gguf" / entry["file"] for quant, entry in manifest["files"].items()}
    report = roundtrip.roundtrip(workspace, run, merged, files, max_new_tokens=8, log=lambda line: None)
    roundtrip.write_report(run, report)
    return {"run": run, "merged": merged, "manifest": manifest, "report": report, "files": files}


def test_export_merges_into_the_full_precision_base_never_the_4bit_one(qlora_run, qlora_exports):
    import json

    import bitsandbytes.functional as bnb
    from safetensors.torch import load_file

    merged, adapter = qlora_exports["merged"], qlora_run["run_dir"] / "adapter"
    assert json.loads((merged / "chatsmith_merge.json").read_text())["trained_in_4bit"] is True
    base = load_file(qlora_run["base"] / "model.safetensors")
    lora = load_file(adapter / "adapter_model.safetensors")
    scale = json.loads((adapter / "adapter_config.json").read_text())
    scale = scale["lora_alpha"] / scale["r"]
    name = "model.layers.0.self_attn.q_proj"
    delta = scale * lora[f"base_model.model.{name}.lora_B.weight"] @ lora[f"base_model.model.{name}.lora_A.weight"]
    weight = load_file(next(merged.glob("*.safetensors")))[f"{name}.weight"]
    nf4 = bnb.dequantize_4bit(*bnb.quantize_4bit(base[f"{name}.weight"], quant_type="nf4"), quant_type="nf4")
    assert delta.abs().max() > 1e-4, "training must have moved this layer's adapter"
    assert (weight - (base[f"{name}.weight"] + delta)).abs().max() < 1e-6  # the fp32 base + the adapter
    assert (weight - (nf4 + delta)).abs().max() > 1e-3  # not NF4's rounded weights


def test_round_trip_states_the_4bit_difference_instead_of_failing(qlora_run, qlora_exports):
    from core.export.choices import roundtrip_markdown
    from core.export.roundtrip import AS_TRAINED

    report = qlora_exports["report"]
    assert report["models"]["merged"]["agreement"] == 1.0  # the merge itself is exact
    assert report["trained_in_4bit"]["measured"]
    as_trained = report["models"][AS_TRAINED]
    assert 0 < as_trained["logit_difference"] < 0.5 and 0 <= as_trained["agreement"] <= 1
    shown = roundtrip_markdown(qlora_run["workspace"], RUN)
    assert AS_TRAINED in shown and "Trained on a 4-bit NF4 base" in shown and "Expected, not an error" in shown
    assert qlora_exports["manifest"]["files"]["F16"]["stop"] == "<|im_end|>"


def test_chat_and_arena_take_the_qlora_run(qlora_run, qlora_exports, monkeypatch):
    import torch

    from core import inference
    from core.evaluate import session
    from core.evaluate.arena import Arena
    from core.evaluate.prompts import PromptItem
    from core.inference import GenerationSettings, transformers_engine

    workspace, adapter = qlora_run["workspace"], (qlora_run["run_dir"] / "adapter").resolve()
    greedy = GenerationSettings(temperature=0, max_new_tokens=6, repetition_penalty=1.0)
    choices = {choice.id: choice for choice in inference.list_choices(workspace)}
    assert not transformers_engine.base_in_4bit(adapter)  # a CPU reloads the base in fp32 for chat
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert transformers_engine.base_in_4bit(adapter)  # a CUDA GPU holds it in 4-bit, as trained
    monkeypatch.undo()

    usage: dict = {}
    full = "".join(inference.open_backend(choices[f"run/{RUN}"], workspace).stream(
        [{"role": "user", "content": "Hi"}], greedy, usage=usage))
    assert usage["completion_tokens"] > 0 and isinstance(full, str)
    nf4 = inference.AdapterView(inference.transformers_backend(qlora_run["base"], in_4bit=True), adapter)
    assert type(nf4.base.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer).__name__ == "Linear4bit"
    usage = {}
    list(nf4.stream([{"role": "user", "content": "Hi"}], greedy, usage=usage))
    assert usage["completion_tokens"] > 0  # the 4-bit code path answers on a CPU too

    gguf_key = f"gguf/{RUN}/gguf/{qlora_exports['files']['F16'].name}"
    arena = Arena(workspace.ratings_db, rate_limit=None)
    battle = session.start_battle(arena, workspace, [f"run/{RUN}", gguf_key], PromptItem(id="t", turns=("Hi",)),
                                  "rater", greedy)
    answers = list(session.stream_battle(arena, workspace, battle["battle_id"], battle["item"], greedy))
    assert answers and "failed to answer" not in " ".join(answers[-1])
    assert set(arena.contenders_of(battle["battle_id"])) == {f"run/{RUN}", gguf_key}
