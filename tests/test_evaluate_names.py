"""Contenders, the leaderboard and the reveal show the names people gave the models, not internal ids; the
ids stay the values the battles, the API and the vote records key on."""

from __future__ import annotations

import random

import gradio as gr

from core.evaluate import names, session
from core.evaluate.arena import Arena
from tabs import evaluate as evaluate_tab
from tabs.common import AppContext

AUTO_RUN = "20261130-212326-default-kestrel-d6145c44958a"


def make_run(workspace, name: str, dataset: str = "kestrel-d6145c44958a", method: str = "sft") -> str:
    folder = workspace.runs / name
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    (folder / "config.yaml").write_text(f"dataset: {workspace.datasets / dataset}\nmethod: {method}\n")
    return f"run/{name}"


def make_gguf(workspace, run: str, quant: str) -> str:
    path = workspace.exports / run / "gguf" / f"{run}-{quant}.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF")
    return f"gguf/{run}/gguf/{run}-{quant}.gguf"


def test_names_people_gave_and_the_distinguishing_part_where_two_read_alike(workspace):
    run = make_run(workspace, AUTO_RUN)
    f16 = make_gguf(workspace, AUTO_RUN, "F16")
    shown = names.display_names(workspace, ["default", "default-transformers", run, f16, "default+docs:notes"])
    assert shown == {"default": "Default model (SmolLM2-135M-Instruct)",
                     "default-transformers": "Default model (SmolLM2-135M-Instruct) · transformers",
                     run: "kestrel · adapter (run 2026-11-30 21:23)", f16: "kestrel · F16 GGUF",
                     "default+docs:notes": "Default model (SmolLM2-135M-Instruct) + documents “notes”"}
    dpo = make_run(workspace, "kestrel-dpo", method="dpo")
    other_f16 = make_gguf(workspace, "kestrel-dpo", "F16")
    shown = names.display_names(workspace, [run, f16, dpo, other_f16])
    assert shown[dpo].startswith("kestrel · DPO adapter (run ")
    assert shown[f16] == "kestrel · F16 GGUF (run 2026-11-30 21:23)"  # two kestrel F16s: the run tells them apart
    assert shown[other_f16].startswith("kestrel · F16 GGUF (run ") and shown[other_f16] != shown[f16]
    twins = [make_run(workspace, "a"), make_run(workspace, "b")]  # same data, same minute: the id settles it
    assert len(set(names.display_names(workspace, twins).values())) == 2


def test_a_deleted_run_is_still_named_from_its_id(workspace):
    assert names.display_names(workspace, [f"run/{AUTO_RUN}", "gone"]) == {
        f"run/{AUTO_RUN}": "kestrel · adapter (run 2026-11-30 21:23)", "gone": "gone"}


def test_the_leaderboard_and_the_reveal_show_names_with_the_id_beside(workspace):
    run = make_run(workspace, AUTO_RUN)
    arena = Arena(workspace.ratings_db, rate_limit=None)
    for number in range(3):
        battle = arena.new_battle(["default", run], [{"role": "user", "content": "hi"}], "r", rng=random.Random(number))
        arena.save_answers(battle, "Hello!", "Hi.")
        arena.vote(battle, "tie", "r", f"k{number}")
    board = session.leaderboard_view(arena, rounds=20, workspace=workspace)
    rows = {row[0]: row[-1] for row in board["table"]}
    assert rows == {"Default model (SmolLM2-135M-Instruct)": "default",
                    "kestrel · adapter (run 2026-11-30 21:23)": run}
    assert "kestrel · adapter (run 2026-11-30 21:23)" in board["models"]
    revealed = session.reveal_text(arena.public_view(battle), workspace)
    assert "kestrel · adapter (run 2026-11-30 21:23)" in revealed and run not in revealed


def handlers(workspace) -> dict:
    with gr.Blocks() as demo:
        evaluate_tab.build(AppContext(workspace, demo=demo))
    return {f.api_name: f.fn for f in demo.fns.values()}


def apply(value: list, update: dict) -> list:
    """What the page's checkbox group holds after an update: its value changes only when the update has one."""
    return update.get("value", value)


def test_contenders_are_listed_by_name_and_checked_by_id(workspace):
    run = make_run(workspace, AUTO_RUN)
    picks, _ = handlers(workspace)["on_refresh_clicked"]()
    assert ("kestrel · adapter (run 2026-11-30 21:23)", run) in picks["choices"]
    assert picks["value"] == ["default", run]


def test_refresh_and_opening_the_tab_agree_in_whichever_order_they_land(workspace):
    """Clicking Refresh right after opening the tab fires both events with the same page state; the page must
    end with the default model and the newest fine-tune checked either way (CI once saw the tab's stale picks
    land last)."""
    make_run(workspace, "20261129-101010-default-chats-aaaaaaaaaaaa")
    fns = handlers(workspace)
    stale = ["default", "default-transformers"]  # what a page loaded before the newest run held
    newest = make_run(workspace, AUTO_RUN)
    refresh, _ = fns["on_refresh_clicked"]()
    opened, _ = fns["on_tab_selected"](stale, None)
    assert apply(apply(stale, refresh), opened) == apply(apply(stale, opened), refresh) == ["default", newest]
    too_few, _ = fns["on_tab_selected"](["run/deleted"], None)  # fewer than two left: the same default pair
    assert apply(["run/deleted"], too_few) == refresh["value"]
