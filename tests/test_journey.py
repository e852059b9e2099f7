"""The guided first run: every step runs in order through the real stages, skips what is done, and stops."""

import json

import pytest

from core import journey
from core.jobs import JobRunner, State
from tests.waiting import wait_for


def _events(workspace):
    return [(e["step"], e["state"]) for e in JobRunner(workspace).snapshot(journey.folder(workspace)).events()]


@pytest.fixture
def tiny_journey(tiny_model_dir):
    # The CPU preset logs the first step and every second one after, so four steps give the pace of steps 2-4.
    return {"model": str(tiny_model_dir), "max_steps": 4, "eval_steps": 0, "save_steps": 4, "batch_size": 4}


@pytest.mark.slow
def test_journey_runs_every_step_then_skips_them_on_a_second_press(workspace, tiny_journey):
    runner = JobRunner(workspace)
    journey.start(workspace, runner, tiny_journey)
    job = runner.wait(journey.folder(workspace), timeout_s=900)
    assert job.state is State.SUCCEEDED, job.error + "\n" + job.log_tail()
    assert [step for step, state in _events(workspace) if state == "done"] == list(journey.STEPS)
    assert (workspace.runs / journey.RUN_NAME / "adapter" / "adapter_config.json").is_file()
    assert job.result["gguf"].endswith("Q8_0.gguf")
    assert json.loads((workspace.exports / journey.RUN_NAME / "roundtrip.json").read_text())
    assert job.result["contenders"] == ["default-transformers", f"run/{journey.RUN_NAME}"]
    assert job.result["chat_model"] == f"gguf/{journey.RUN_NAME}/gguf/{journey.RUN_NAME}-Q8_0.gguf"
    # The fine-tune's first steps gave the ETA the panel states; the run report sets it against the real time.
    assert journey.estimate(job)["eta_s"] > 0 and journey.estimate(job)["tokens_per_s"] > 0
    report = (workspace.runs / journey.RUN_NAME / "report.md").read_text(encoding="utf-8")
    assert "s projected from steps 2–4 vs" in report and "% error" in report
    assert "no price per kWh was set" in report and "≈ 0.0000" not in report
    # The Train and Export jobs are ordinary jobs, listed in their own tabs; no second model load for a probe.
    assert {j.kind for j in runner.list()} == {"journey", "train", "export"}

    journey.start(workspace, runner, tiny_journey)
    again = runner.wait(journey.folder(workspace), timeout_s=600)
    assert again.state is State.SUCCEEDED
    second = _events(workspace)[len(journey.STEPS) * 2:]
    assert [state for step, state in second if step in ("data", "train", "export")] == \
        ["running", "skipped"] * 3


@pytest.mark.slow
def test_stopping_the_journey_stops_the_training_it_started(workspace, tiny_journey):
    runner = JobRunner(workspace)
    journey.start(workspace, runner, {**tiny_journey, "max_steps": 10_000, "save_steps": 5})
    run_dir = workspace.runs / journey.RUN_NAME
    assert wait_for(lambda: (run_dir / "events.jsonl").is_file() and runner.snapshot(run_dir).state is State.RUNNING,
                    timeout=300), "the journey's training never started"
    runner.request_stop(journey.folder(workspace))
    job = runner.wait(journey.folder(workspace), timeout_s=300)
    assert job.state is State.STOPPED
    assert job.result["stopped_during"] == "train"
    assert runner.snapshot(run_dir).state is State.STOPPED


def test_the_panel_follows_the_journey_from_tab_to_tab(workspace):
    """The UI opens a step's tab once the step has something to show (Chat and Arena need their model)."""
    from core import atomic
    from tabs import journey as panel

    folder = journey.folder(workspace)
    atomic.write_json(folder / "job.json", {"kind": "journey", "title": "Guided first run", "created": 0})
    atomic.write_json(folder / "status.json", {"state": "succeeded", "step": 3, "total": 5, "message": "m"})
    events = [{"step": "data", "state": "running"}, {"step": "data", "state": "done", "dataset": "d"},
              {"step": "train", "state": "running"}]
    atomic.write_jsonl(folder / "events.jsonl", events)
    runner = JobRunner(workspace)
    assert panel.reached(runner.snapshot(folder)) == ("train", journey.RUN_NAME)
    atomic.write_jsonl(folder / "events.jsonl", events + [{"step": "chat", "state": "running"}])
    assert panel.reached(runner.snapshot(folder))[0] == "train"  # Chat has no model yet: stay on Train
    atomic.write_jsonl(folder / "events.jsonl", events + [
        {"step": "chat", "state": "running"}, {"step": "chat", "state": "done", "chat_model": "gguf/x.gguf"}])
    assert panel.reached(runner.snapshot(folder)) == ("chat", "gguf/x.gguf")
    assert panel.TAB_OF_STEP["arena"] == "evaluate"


def test_the_checklist_marks_each_step(workspace):
    from core import atomic
    from tabs import journey as panel
    from tabs.common import AppContext

    folder = journey.folder(workspace)
    atomic.write_json(folder / "job.json", {"kind": "journey", "title": "Guided first run", "created": 0})
    atomic.write_json(folder / "status.json", {"state": "failed", "error": "Train failed: out of memory"})
    atomic.write_jsonl(folder / "events.jsonl", [{"step": "data", "state": "skipped"},
                                                 {"step": "train", "state": "running"}])
    text = panel.checklist(AppContext(workspace))
    assert "⏭️ 1. Prepare" in text and "⏳ 2. Fine-tune" in text and "◻️ 3. Export" in text
    assert "❌ Train failed: out of memory" in text


def test_a_q8_0_that_leaves_the_merged_answers_early_hands_chat_the_f16(workspace):
    gguf_dir = workspace.exports / journey.RUN_NAME / "gguf"
    gguf_dir.mkdir(parents=True)
    files = {quant: {"file": f"{journey.RUN_NAME}-{quant}.gguf"} for quant in ("Q8_0", "F16")}
    for entry in files.values():
        (gguf_dir / entry["file"]).write_bytes(b"GGUF")
    (gguf_dir / "manifest.json").write_text(json.dumps({"files": files}))
    report = {"prompts": ["a", "b"], "models": {"Q8_0": {"first_divergence": [None, 1]},
                                                  "F16": {"first_divergence": [None, None]}}}
    roundtrip = workspace.exports / journey.RUN_NAME / "roundtrip.json"
    roundtrip.write_text(json.dumps(report))
    outcome, done = journey.export_gguf(workspace, None, None, {})
    assert done and outcome["gguf"].endswith("F16.gguf")

    report["models"]["Q8_0"]["first_divergence"] = [None, 30]  # a late divergence keeps the smaller file
    roundtrip.write_text(json.dumps(report))
    assert journey.export_gguf(workspace, None, None, {})[0]["gguf"].endswith("Q8_0.gguf")


def test_a_page_opened_after_the_journey_stays_on_its_gguf_whichever_handler_lands_last(workspace):
    """Opening a page fires the journey's load (pointing Chat at the journey's GGUF) and, seconds later, Chat's
    poll for new models, which carries the picker's value from before the load's answer arrived. On a busy
    machine the poll's answer can land last: it must not put the base model back."""
    import app
    from tabs.common import AppContext
    from tests.browser_fixtures import place_gguf, place_run, write_journey

    gguf = f"{journey.RUN_NAME}/gguf/{journey.RUN_NAME}-Q8_0.gguf"
    place_gguf(workspace, gguf)
    place_run(workspace, journey.RUN_NAME)
    write_journey(workspace, [{"step": "chat", "state": "done", "chat_model": f"gguf/{gguf}"}], "succeeded")
    demo = app.build_app(AppContext(workspace))
    handler = {(block.fn.__module__, block.fn.__name__): block for block in demo.fns.values()}
    load, poll = handler["tabs.journey", "on_page_load"], handler["tabs.chat", "on_follow_tick"]

    def picker(block, answer):
        return answer[[output.elem_id for output in block.outputs].index("chat-model")]

    stale = "default"  # the picker's value when the page was served
    loaded, polled = picker(load, load.fn()), picker(poll, poll.fn("", stale))
    for first, last in ((loaded, polled), (polled, loaded)):
        assert last.get("value", first.get("value", stale)) == f"gguf/{gguf}"
