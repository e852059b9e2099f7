"""The Train tab: widgets a browser test needs, the live view of a run, and what Start refuses."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from core.devices import DeviceInfo
from core.errors import BadInputError, CapabilityError
from core.train import runs, start
from core.train.settings import GPU_PRESET, TrainSettings, preset_settings
from tabs import train as train_tab
from tabs import train_runs, train_settings
from tabs.common import AppContext
from tests.train_helpers import write_version

CPU = DeviceInfo(kind="cpu", name="Intel Xeon", accelerator_memory_gb=None, compute_capability=None, bf16=False,
                 cpu_cores=2, ram_gb=24, bitsandbytes=True, llama_cpp=True, free_disk_gb=50)


@pytest.fixture
def ctx(workspace):
    return AppContext(workspace, _device=CPU)


def test_tab_has_the_widgets_the_browser_test_uses(ctx):
    import app

    demo = app.build_app(ctx)
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"train-preset", "train-preflight", "train-start", "train-stop", "train-progress", "train-loss-plot",
            "train-steps"} <= ids


def test_every_setting_has_one_labelled_widget_showing_its_default(ctx):
    import gradio as gr

    with gr.Blocks() as demo:
        ctx.demo = demo
        train_tab.build(ctx)
    inputs = [block for block in demo.blocks.values()
              if isinstance(block, (gr.Number, gr.Checkbox, gr.Dropdown, gr.Textbox, gr.Radio))]
    defaults = TrainSettings()
    for field in dataclasses.fields(TrainSettings):
        if field.name in ("model", "dataset", "start_from"):  # pickers filled from the workspace
            continue
        label = {"method": "train.method", "beta": "train.beta"}.get(field.name, f"train.f.{field.name}")
        [widget] = [block for block in inputs if getattr(block.label, "key", None) == label]  # translated labels
        assert widget.value == getattr(defaults, field.name), field.name
    assert set(train_settings.LABELS_EN) == set(train_settings.LABELS_ZH)
    assert train_settings.typed("batch_size", 4.0) == 4 and train_settings.typed("learning_rate", None) == 2e-4


def test_settings_sit_in_labelled_sections_and_each_explains_itself_with_its_field_docstring(ctx):
    import gradio as gr

    from core.train.config_file import field_notes

    with gr.Blocks() as demo:
        ctx.demo = demo
        train_tab.build(ctx)
    sections = [block for block in demo.blocks.values() if isinstance(block, gr.Accordion)
                and getattr(block.label, "key", "").startswith("train.s.")]
    assert len(sections) == 5 and all(key in train_settings.STRINGS["en"] for key in train_settings.SECTIONS)
    assert sorted(name for names in train_settings.SECTIONS.values() for name in names) == \
        sorted(train_settings.FIELDS)  # every setting in exactly one section
    widgets = {getattr(getattr(block, "label", None), "key", None): block for block in demo.blocks.values()}
    for name in train_settings.FIELDS:
        info = widgets[f"train.f.{name}"].info
        assert info and info == field_notes()[name], name
    assert widgets["train.f.max_steps"].info == "Optimizer steps to run; 0 means use epochs."


def _fake_run(ctx, name, state, error="", events=()):
    run_dir = ctx.workspace.runs / name
    run_dir.mkdir(parents=True)
    runs.write_config(run_dir, TrainSettings(dataset="/d/v1"))
    (run_dir / "job.json").write_text(json.dumps({"kind": "train", "title": name, "created": time.time(),
                                                  "heavy": True, "target": start.TARGET, "params": {}}))
    (run_dir / "status.json").write_text(json.dumps({"state": state, "step": 3, "total": 10, "message": "Failed.",
                                                     "error": error, "started": time.time() - 30,
                                                     "ended": time.time()}))
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run_dir / "log.txt").write_text("step 3/10: loss=2.1\n")
    return run_dir


def test_a_run_that_ran_out_of_memory_shows_the_advice_and_why_resume_is_off(ctx):
    advice = ("Training ran out of GPU memory (RTX 4090); the run is marked failed and the memory freed. "
              "Try, in this order: halve batch_size to 4 and double grad_accum to 2 (same effective batch)")
    _fake_run(ctx, "oom-run", "failed", advice, [{"step": 1, "loss": 2.5, "learning_rate": 1e-4}])

    steps, progress, loss, lr, log, command, resume, stop, _, raw = train_runs.run_view(ctx, "oom-run")

    assert steps == "3 / 10"
    assert "failed" in progress and "halve batch_size to 4" in progress
    assert "No complete checkpoint" in progress
    assert resume["interactive"] is False and stop["interactive"] is False
    assert list(loss["metric"]) == ["loss"] and list(lr["value"]) == [1e-4]
    assert "step 3/10 · loss 2.1" in log and "step 3/10: loss=2.1" in raw and "--resume" in command


def test_a_stopped_run_with_a_checkpoint_offers_resume(ctx):
    run_dir = _fake_run(ctx, "stopped-run", "stopped", events=[{"step": 3, "loss": 2.0}])
    checkpoint = run_dir / "checkpoints" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    for name in ("trainer_state.json", "optimizer.pt", runs.COMPLETE_MARKER):
        (checkpoint / name).write_text("{}")

    *_, resume, _, _, _ = train_runs.run_view(ctx, "stopped-run")

    assert resume["interactive"] is True


def test_start_refuses_qlora_on_a_cpu_and_a_missing_dataset_before_making_a_run(ctx, version):
    with pytest.raises(CapabilityError, match="NVIDIA GPU"):
        train_runs.start_named(ctx, preset_settings(GPU_PRESET, dataset=str(version)), {}, 0.3, "EUR")
    with pytest.raises(BadInputError, match="No train.jsonl"):
        train_runs.start_named(ctx, TrainSettings(dataset=str(ctx.workspace.datasets / "nope")), {}, 0.3, "EUR")
    assert list(ctx.workspace.runs.iterdir()) == []


def test_compare_two_runs_on_different_sources(ctx):
    first = _fake_run(ctx, "identity", "succeeded", events=[{"step": 1, "loss": 2.0}, {"step": 2, "eval_loss": 1.9}])
    second = _fake_run(ctx, "science", "succeeded", events=[{"step": 1, "loss": 3.0}])
    runs.write_config(second, TrainSettings(dataset="/d/science"))

    plot, diff, metrics = train_tab._compare([first, second])

    assert set(plot["series"]) == {"identity · loss", "identity · eval_loss", "science · loss"}
    assert diff.values.tolist() == [["dataset", "/d/v1", "/d/science"]]
    assert metrics["run"].tolist() == ["identity", "science"]


def test_datasets_listed_include_versions_without_the_data_stage_card(workspace):
    from core.train.data import list_versions

    folder = write_version(workspace.datasets / "hand-made")
    assert folder in list_versions(workspace)


@pytest.mark.slow
def test_start_from_the_tab_trains_and_the_live_view_follows_it(ctx, tiny_model_dir, version):
    from tests.train_helpers import tiny_settings

    plan = {"plan": {"eta_s": 30.0}, "settings": tiny_settings(tiny_model_dir, version).to_dict()}
    name = train_runs.start_named(ctx, tiny_settings(tiny_model_dir, version), plan, 0.30, "EUR")
    job = ctx.jobs.wait(ctx.workspace.runs / name, timeout_s=240)

    assert job.state.value == "succeeded", job.error
    steps, progress, loss, _, log, *_, raw = train_runs.run_view(ctx, name)
    assert steps == "2 / 2" and "succeeded" in progress
    # The log reads as words; transformers' dicts stay in the raw log folded beneath it.
    assert "{'" in raw and "{'" not in log and "step 2/2 · loss " in log and "validation loss" in log, log
    assert sorted(loss[loss["metric"] == "loss"]["step"]) == [1, 2]
    assert list(loss[loss["metric"] == "eval_loss"]["step"]) == [2]  # the final eval, on validation.jsonl
    assert job.result["eta_s"] == 30.0  # the pre-flight ETA travels with the run and is scored against it


@pytest.mark.slow
def test_preference_runs_get_their_datasets_check_plot_and_before_after_lines(ctx, tiny_model_dir, version):
    from tabs import train_preference
    from tests.preference_helpers import kestrel_version
    from tests.train_helpers import tiny_settings

    votes = kestrel_version(ctx.workspace, 20)
    assert train_preference.dataset_choices(ctx, "dpo") == [votes.name]  # the picker lists versions by name
    assert version.name in train_preference.dataset_choices(ctx, "sft") and votes.name not in \
        train_preference.dataset_choices(ctx, "sft")
    settings = tiny_settings(tiny_model_dir, votes, method="dpo", max_steps=2, batch_size=2, eval_steps=1)
    plan, card, sample = train_preference.check(settings, ctx)
    assert "18 pairs ·" in card and plan.train_rows == 18
    assert [kind for _, kind in sample] == [None, "chosen", None, "rejected"]
    assert "Kestrel" in sample[1][0] and "<|im_end|>" in sample[1][0]  # the answer and its end-of-turn token

    name = train_runs.start_named(ctx, settings, {}, 0.0, "")
    job = ctx.jobs.wait(ctx.workspace.runs / name, timeout_s=240)

    assert job.state.value == "succeeded", job.error
    view = train_runs.run_view(ctx, name)
    progress, preference_plot = view[1], view[8]
    assert "Held-out preference accuracy" in progress and "reward margin" in progress
    assert {"reward_margin", "preference_accuracy", "eval_preference_accuracy"} <= set(preference_plot["metric"])


def _handler(demo, name):
    return next(block.fn for block in demo.fns.values() if block.name == name)


@pytest.mark.slow
def test_probe_frees_its_worker_at_once_and_the_timer_shows_the_measured_speed(ctx, tiny_model_dir, version):
    import app
    from tests.train_helpers import tiny_settings
    from tests.waiting import wait_for

    demo = app.build_app(ctx)
    on_probe_click, on_probe_tick = _handler(demo, "on_probe_click"), _handler(demo, "on_probe_tick")
    settings = tiny_settings(tiny_model_dir, version)
    form = [settings.model, version.name, "sft", settings.beta, "", *[getattr(settings, f) for f in train_settings.FIELDS]]

    card, plan_values, probe, timer = on_probe_click(0.30, "EUR", {}, *form)

    assert "probing" in card and timer.active  # returned with the job still running: no worker waits on it
    assert not ctx.jobs.snapshot(probe["folder"]).state.finished
    still = on_probe_tick(probe, plan_values)  # a tick while the probe runs says where it is and keeps ticking
    assert "⏳ probing: " in still[0] and still[1] == plan_values and still[2] == probe and still[3].active
    assert wait_for(lambda: ctx.jobs.snapshot(probe["folder"]).state.finished, timeout=300)
    card, plan_values, probe_after, timer = on_probe_tick(probe, plan_values)
    assert "**Probe**" in card and "**ETA**" in card, card  # the measured speed, priced for the whole run
    assert plan_values["plan"]["tokens_per_s"] > 0 and plan_values["settings"] == settings.to_dict()
    assert probe_after == {} and timer.active is False


def test_trained_tokens_have_the_same_colour_in_the_data_and_train_tabs(ctx):
    import app
    from core.masks import TRAINED
    from tabs.common import TRAINED_COLOURS

    demo = app.build_app(ctx)
    highlights = {block.elem_id: block for block in demo.blocks.values()
                  if getattr(block, "elem_id", None) in ("train-mask", "data-template-out")}
    assert set(highlights) == {"train-mask", "data-template-out"}
    assert highlights["train-mask"].color_map == highlights["data-template-out"].color_map == TRAINED_COLOURS
    assert TRAINED_COLOURS[TRAINED] == "#7fd17f"  # green: what the Data tab always showed


def test_the_time_left_leaves_out_the_minutes_spent_loading_the_model(tmp_path):
    """Three minutes of loading, then 10 s a step: at step 12 of 30 about 3 minutes are left, not the 7.5
    that the time elapsed over the steps done would say."""
    from core.jobs import JobSnapshot, State

    job = JobSnapshot(folder=tmp_path, kind="train", title="run", state=State.RUNNING, step=12, total=30,
                      started=time.time() - 300)
    events = [{"step": step, "loss": 2.0, "step_s": 40.0 if step == 1 else 10.0, "tokens_per_s": 100.0}
              for step in (1, *range(2, 13, 2))]
    text = train_runs.progress_text(job, events, runs.ResumeCheck(False, ""))
    assert "remaining ~0:03:00" in text, text
    assert "remaining ~0:07:30" in train_runs.progress_text(job, events[:2], runs.ResumeCheck(False, ""))


def test_the_time_left_counts_in_the_evaluation_still_to_come(tmp_path):
    """10 s a step and an evaluation at step 15 that took 50 s: at step 16 of 30 the one at the end is still
    to come, so 2 min 20 s of steps and 50 s of evaluation are left."""
    from core.jobs import JobSnapshot, State

    job = JobSnapshot(folder=tmp_path, kind="train", title="run", state=State.RUNNING, step=16, total=30,
                      started=time.time() - 400)
    events = [{"step": step, "loss": 2.0, "step_s": 40.0 if step == 1 else 10.0, "tokens_per_s": 100.0}
              for step in (1, *range(2, 15, 2))]
    events += [{"step": 15, "eval_loss": 1.9, "eval_s": 50.0}, {"step": 16, "loss": 1.8, "step_s": 10.0}]
    text = train_runs.progress_text(job, events, runs.ResumeCheck(False, ""))
    assert "remaining ~0:03:10" in text, text
