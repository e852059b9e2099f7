"""Training runs on the tiny model: files written, weights moved, stop/resume, kill -9, OOM, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from core.errors import ChatsmithError
from core.jobs import JobRunner, State, read_events
from core.train import job, recipe, runs, start
from tests.train_helpers import FakeReporter, tiny_settings
from tests.waiting import wait_for

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _submit(jobs, run_dir, settings, workspace, resume=False):
    params = start.run_params(workspace, settings, resume=resume)
    return jobs.submit(run_dir, start.TARGET, params, kind="train", title=run_dir.name, heavy=True)


def test_two_step_run_moves_lora_weights_and_not_the_base(tiny_model_dir, workspace, version, monkeypatch):
    from safetensors.torch import load_file

    loaded = {}
    original = recipe.load_model
    monkeypatch.setattr(recipe, "load_model", lambda *a: loaded.setdefault("model", original(*a)))
    run_dir = workspace.runs / "two-steps"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": tiny_settings(tiny_model_dir, version).to_dict(), "workspace": str(workspace.root),
                       "eta_s": 1.0, "price_per_kwh": 0.30, "currency": "EUR"}

    result = job.run(reporter)

    adapter = run_dir / "adapter"
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in adapter.iterdir()}
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
    lora = load_file(adapter / "adapter_model.safetensors")
    lora_b = [tensor for name, tensor in lora.items() if "lora_B" in name]
    assert lora_b and all(tensor.abs().sum() > 0 for tensor in lora_b)  # B starts at zero: it moved
    base = load_file(tiny_model_dir / "model.safetensors")
    trained = {name.replace("base_model.model.", "").replace(".base_layer", ""): p.detach()
               for name, p in loaded["model"].named_parameters() if "lora_" not in name}
    assert base and all((trained[name] == tensor).all() for name, tensor in base.items())
    assert result["step"] == 2 and result["stopped_at"] is None
    assert [event["step"] for event in reporter.events if "loss" in event] == [1, 2]
    evaluation, = [event for event in reporter.events if "eval_loss" in event]  # the final one, timed
    assert evaluation["step"] == 2 and evaluation["eval_s"] > 0
    assert runs.read_config(run_dir).dataset == str(version)
    report = (run_dir / "report.md").read_text()
    assert "finished 2 of 2 steps" in report and "1 s estimated vs" in report and "EUR" in report
    trl = __import__("trl").__version__  # the run records the TRL its speed-up was written against
    assert f"| TRL | {trl} |" in report and f"speed: TRL {trl}: fused LM head scores trained tokens only" in \
        "\n".join(reporter.lines)
    assert result["eta_error"] == pytest.approx((result["duration_s"] - 1.0) / 1.0, abs=1e-3)


def test_a_run_without_a_preflight_eta_is_timed_against_the_pace_of_its_own_first_steps(tmp_path):
    """Logged as the CPU preset logs (the first step, then every second one): step 1's warm-up is left out,
    and the ETA is projected once three later steps are in."""
    from core import atomic

    run_dir = tmp_path / "run"
    events = [{"step": 1, "loss": 3.0, "step_s": 25.0, "tokens_per_s": 20.0},
              {"step": 2, "loss": 2.9, "step_s": 10.0, "tokens_per_s": 150.0}]
    atomic.write_jsonl(run_dir / "events.jsonl", events)
    assert runs.early_pace(run_dir, total_steps=4) is None  # one step past the warm-up is not enough
    events += [{"step": 3, "eval_loss": 2.8}, {"step": 4, "loss": 2.7, "step_s": 10.0, "tokens_per_s": 150.0}]
    atomic.write_jsonl(run_dir / "events.jsonl", events)
    assert runs.early_pace(run_dir, total_steps=4) == {"eta_s": 40.0, "step_s": 10.0, "tokens_per_s": 150.0,
                                                      "first_step": 2, "after_step": 4}

    summary = {"max_steps": 4}
    assert job._eta(run_dir, summary, {}, resumed=False) == (40.0, "projected from steps 2–4")
    assert job._eta(run_dir, summary, {"eta_s": 55.0}, resumed=False) == (55.0, "estimated")
    assert job._eta(run_dir, summary, {}, resumed=True) == (None, "")  # a resumed session has no first steps


def test_the_time_left_goes_by_the_pace_of_the_steps_not_the_time_since_the_model_began_loading():
    """Three minutes of loading, then 10 s a step: at step 12 of 30 the run has 18 steps, 3 minutes, left
    (the time elapsed, 300 s for 12 steps, would say 7.5 minutes); slower steps later count in by their number."""
    events = [{"step": 1, "loss": 3.0, "step_s": 40.0}, {"step": 2, "loss": 2.9, "step_s": 10.0}]
    assert runs.time_left(events, step=2, total=30) is None  # not enough steps for a pace yet
    assert runs.time_left(events, step=2, total=30, elapsed_s=200.0) == 2800.0  # then loading counts in
    events += [{"step": step, "loss": 2.0, "step_s": 10.0} for step in range(4, 13, 2)]
    assert runs.time_left(events, step=12, total=30) == pytest.approx(180.0)
    slower = [*events, *[{"step": step, "loss": 2.0, "step_s": 30.0} for step in range(14, 25, 2)]]
    assert runs.time_left(slower, step=24, total=30) == pytest.approx(6 * (11 * 10 + 12 * 30) / 23)


def test_the_time_left_counts_in_the_evaluations_still_to_come_at_the_length_of_those_logged():
    """10 s a step and an evaluation every 15 steps that took 40 s: at step 16 of 30 one evaluation is left
    (at step 30, the end), at step 16 of 40 two (at 30, and at the end); none before the first is timed."""
    events = [{"step": step, "loss": 2.0, "step_s": 10.0} for step in (1, *range(2, 15, 2))]
    assert runs.time_left(events, step=14, total=30) == pytest.approx(160.0)
    events += [{"step": 15, "eval_loss": 1.9, "eval_s": 40.0}, {"step": 16, "loss": 1.8, "step_s": 10.0}]
    assert runs.time_left(events, step=16, total=30) == pytest.approx(14 * 10 + 40)
    assert runs.time_left(events, step=16, total=40) == pytest.approx(24 * 10 + 2 * 40)
    assert runs.time_left(events, step=30, total=30) == 0.0


def test_padding_free_batches_give_the_same_loss_as_padded(tiny_model_dir, version):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.train.callbacks import CountingCollator
    from core.train.data import load_splits, tokenize

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows, _ = tokenize(tokenizer, load_splits(version, 0, 0)[0][:6], 256, True)
    examples = [{"input_ids": r["input_ids"], "labels": [t if m else -100 for t, m in
                                                         zip(r["input_ids"], r["assistant_masks"])]} for r in rows]
    losses, waste = [], []
    for padding_free in (False, True):
        collator = CountingCollator(pad_token_id=tokenizer.pad_token_id, padding_free=padding_free)
        batch = {k: v for k, v in collator(examples).items() if k in ("input_ids", "labels", "attention_mask",
                                                                       "position_ids")}
        with torch.no_grad():
            losses.append(model(**batch).loss.item())
        waste.append(collator.processed_tokens / collator.real_tokens)
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    assert waste[1] == 1.0 < waste[0]


def _train_with(batching, tiny_model_dir, workspace, version, monkeypatch, **changes):
    """Two real steps with `batching`; (the run's summary, the SFT trainer it used)."""
    seen = {}
    original = recipe._processes
    monkeypatch.setattr(recipe, "_processes", lambda trainer: seen.setdefault("trainer", trainer) and original(trainer))
    run_dir = workspace.runs / batching
    run_dir.mkdir()
    settings = tiny_settings(tiny_model_dir, version, batching=batching, save_steps=0, **changes)
    summary = recipe.train(settings, run_dir, workspace, FakeReporter(run_dir))
    return summary, seen["trainer"]


def test_packing_fills_rows_with_several_conversations_and_counts_only_real_tokens(tiny_model_dir, workspace,
                                                                                   version, monkeypatch):
    summary, trainer = _train_with("packing", tiny_model_dir, workspace, version, monkeypatch, max_length=128)

    rows = trainer.train_dataset["input_ids"]
    assert len(rows) < 40 and max(map(len, rows)) <= 128  # 40 conversations packed into fewer, full rows
    assert summary["step"] == 2 and summary["real_tokens"] == trainer.state.num_input_tokens_seen > 0


def test_length_grouped_batches_waste_less_padding_than_random_ones(tiny_model_dir, workspace, version, monkeypatch):
    waste = {}
    for batching in ("padded", "length_grouped"):
        summary, _ = _train_with(batching, tiny_model_dir, workspace, version, monkeypatch, max_steps=4)
        assert summary["step"] == 4
        waste[batching] = summary["processed_tokens"] / summary["real_tokens"]  # pad tokens make it above 1

    assert 1.0 <= waste["length_grouped"] < waste["padded"], waste


def test_injected_oom_fails_with_concrete_advice(tiny_model_dir, workspace, version, monkeypatch):
    import torch
    from trl import SFTTrainer

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SFTTrainer, "training_step", out_of_memory)
    run_dir = workspace.runs / "oom"
    run_dir.mkdir()
    reporter = FakeReporter(run_dir)
    reporter.params = {"settings": tiny_settings(tiny_model_dir, version, batch_size=8).to_dict(),
                       "workspace": str(workspace.root)}

    with pytest.raises(ChatsmithError) as caught:
        job.run(reporter)

    text = str(caught.value)
    assert "ran out of RAM memory" in text
    assert "halve batch_size to 4 and double grad_accum to 2" in text and "gradient checkpointing" in text
    assert not (run_dir / "adapter").exists()


@pytest.mark.slow
def test_stop_then_resume_continues_the_step_count_and_curve(tiny_model_dir, workspace, version):
    jobs = JobRunner(workspace)
    config = workspace.root / "my-config.yaml"
    config.write_text(yaml.safe_dump(tiny_settings(tiny_model_dir, version, max_steps=40, save_steps=1000,
                                                   lora_rank=4, batch_size=2).to_dict()))
    run_dir = workspace.runs / "stop-resume"
    cli = subprocess.Popen([sys.executable, "-m", "core.train", str(config), "--workspace", str(workspace.root),
                            "--name", run_dir.name], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    # Stop at the first logged loss: the tiny model runs a step in about 0.1 s, so 40 steps leave seconds for the
    # request to land mid-run (8 steps once finished before it did).
    assert wait_for(lambda: any("loss" in e for e in read_events(run_dir)), interval=0.05)
    jobs.request_stop(run_dir)  # what the tab's Stop button does

    output = cli.communicate(timeout=120)[0]
    stopped = jobs.snapshot(run_dir)
    assert cli.returncode == 3 and stopped.state is State.STOPPED, output[-3000:]
    stop_step = stopped.result["stopped_at"]
    assert f"stopped: Stopped at step {stop_step}" in output
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert runs.complete_checkpoints(run_dir)[-1].name == f"checkpoint-{stop_step}"
    assert runs.resume_check(run_dir, jobs).ok

    _submit(jobs, run_dir, runs.read_config(run_dir), workspace, resume=True)
    resumed = jobs.wait(run_dir, timeout_s=180)

    assert resumed.state is State.SUCCEEDED, resumed.error
    steps = [e["step"] for e in read_events(run_dir) if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    assert min(s for s in steps if s > stop_step) == stop_step + 1  # the curve continues, no restart at 1
    assert not runs.resume_check(run_dir, jobs).ok  # finished: nothing to resume


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_from_the_newest_complete_checkpoint(tiny_model_dir, workspace, version):
    jobs = JobRunner(workspace)
    run_dir = workspace.runs / "killed"
    _submit(jobs, run_dir, tiny_settings(tiny_model_dir, version, max_steps=10, save_steps=2, lora_rank=4,
                                         batch_size=2), workspace)
    assert wait_for(lambda: len(runs.complete_checkpoints(run_dir)) >= 1 and
                    max((e["step"] for e in read_events(run_dir)), default=0) > 3)
    os.killpg(json.loads((run_dir / "status.json").read_text())["pid"], signal.SIGKILL)
    assert wait_for(lambda: jobs.snapshot(run_dir).state is State.INTERRUPTED, timeout=30)
    newest = runs.complete_checkpoints(run_dir)[-1]
    # A kill in the middle of a save leaves a folder without the completion marker: never resumed from.
    half_written = run_dir / "checkpoints" / "checkpoint-999"
    half_written.mkdir()
    (half_written / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    check = runs.resume_check(run_dir, jobs)
    assert check.ok and check.checkpoint == newest

    done = subprocess.run([sys.executable, "-m", "core.train", str(run_dir / "config.yaml"), "--resume"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded: Done: 10 steps" in done.stdout
    assert f"resuming from {newest.name}" in done.stdout
    assert not half_written.exists()
    steps = [e["step"] for e in read_events(run_dir) if "loss" in e]
    assert steps == sorted(set(steps)) and steps[-1] == 10
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
