"""The messages handlers compute, in English and Chinese: every key in both languages with the same
placeholders, the sentences core writes found in the table, the browser's language read from its request,
and the Train tab's live view of a finished run in Chinese while English stays as it was."""

from __future__ import annotations

import json
import re
import string
import time
from types import SimpleNamespace

import pytest

from core.devices import DeviceInfo, capabilities
from core.errors import BadInputError, DiskFullError, describe
from core.evaluate import ratings, session, verdicts
from core.export.gguf import recommend
from core.train import runs, start
from core.train.settings import PRESETS, TrainSettings, preset_gate
from tabs import train_runs
from tabs.common import AppContext
from tabs.evaluate_arena import BOARD_HEADERS
from tabs.messages import LOCALES, MESSAGES, error_line, locale_of, say, translated, translated_markdown

CPU = DeviceInfo(kind="cpu", name="Intel Xeon", accelerator_memory_gb=None, compute_capability=None, bf16=False,
                 cpu_cores=2, ram_gb=24, bitsandbytes=True, llama_cpp=True, free_disk_gb=50)
LATIN_WORDS = re.compile(r"\b(?!(?:LoRA|QLoRA|CPU|GPU|NVIDIA|RTX|Apple|Elo|BT|CI|SmolLM2|Q\d\w*|F16|K)\b)[a-z]{3,}\b")
"""An English word of three letters or more, other than names that stay as they are in Chinese text."""


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_message_has_both_languages_with_the_same_placeholders(key):
    entry = MESSAGES[key]
    assert set(entry) == set(LOCALES), f"{key} lacks {set(LOCALES) - set(entry)}"
    assert all(entry.values()), key
    assert placeholders(entry["zh"]) == placeholders(entry["en"]), key


def test_the_browser_language_comes_from_accept_language():
    def request(value):
        return SimpleNamespace(headers={"accept-language": value} if value is not None else {})

    assert locale_of(request("zh-CN,zh;q=0.9,en;q=0.8")) == "zh"
    assert locale_of(request("zh-TW")) == "zh"
    assert locale_of(request("en-GB,zh-CN;q=0.5")) == "en"  # the first preference wins
    assert locale_of(request(None)) == locale_of(None) == "en"  # API calls, handlers called directly


def test_sentences_core_writes_read_in_chinese_with_their_numbers_and_names_kept():
    done = translated("Done: 30 steps in 12 s; adapter saved.", "zh")
    assert done == say("train.done", "zh", steps="30", seconds="12") and "30" in done and "12" in done
    small = translated(recommend(135_000_000, 7, 30)[1], "zh")
    assert "135M" in small and "30 个权重矩阵中有 7 个" in small and not LATIN_WORDS.search(small), small
    for parameters in (2e9, 7e9):
        assert not LATIN_WORDS.search(translated(recommend(int(parameters), 0, 30)[1], "zh"))
    advice = ratings.separation_text([{"better": "tuned-v2", "worse": "base", "more_votes": 12},
                                      {"better": "a", "worse": "b", "more_votes": None}])
    assert [translated(line, "zh") for line in advice] == ["还需约 12 票才能区分 tuned-v2 和 base",
                                                           "目前看来 a 和 b 不相上下"]
    assert translated(session.interval_text({"battles": 3}), "zh") == "票数不足（3/5 场对战）"
    assert translated(session.votes_text(1), "zh") == "1 票"
    assert translated(session.votes_text(1234), "zh") == "1,234 票"
    assert all(not LATIN_WORDS.search(translated(header, "zh")) for header in BOARD_HEADERS)
    for winner, outcome in (("a", "A 胜"), ("b", "B 胜"), ("tie", "平局"), ("both_bad", "都差")):
        reveal = session.reveal_text({"winner": winner, "model_a": "kestrel · adapter", "model_b": "base"})
        assert translated(reveal, "zh") == f"**{outcome}。** A 是 **kestrel · 适配器**，B 是 **base**。"


def test_export_job_titles_read_in_chinese_with_the_run_and_files_kept():
    assert translated("Round-trip check · kestrel", "zh") == "往返检查 · kestrel"
    assert translated("Space (gguf) · kestrel", "zh") == "Space（gguf）· kestrel"
    assert translated("Restore backup", "zh") == "恢复备份" and translated("Merge · kestrel", "zh") == "合并 · kestrel"


def test_a_data_report_reads_in_chinese_with_its_names_and_counts_kept(tmp_path):
    from core.data import prepare
    from core.data.options import PrepareOptions
    from core.data.report import to_markdown

    source = tmp_path / "mixed.jsonl"  # alpaca rows, a duplicate, a row in another format, an HTML answer
    rows = [{"instruction": f"Say {n}", "output": f"{n}"} for n in range(9)]
    rows += [rows[0], {"messages": [{"role": "user", "content": "Hi"}]}, {"instruction": "B", "output": "<b>b</b>"}]
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    report = prepare([source], PrepareOptions(model="", near_dup_threshold=0, max_drop_share=0.9)).report
    english = "# Data report: kestrel\n\n" + to_markdown(report)
    shown = translated_markdown(english, "zh")
    assert "# 数据报告：kestrel" in shown and "**保留 10 条对话**，共 12 行（训练" in shown
    assert "| 文件 | 格式 | 行数 | 依据 |" in shown and "| mixed.jsonl | alpaca | 12 | 抽样的 12 行中有 11 行含" in shown
    assert "这一行的格式与文件不同（格式混杂）" in shown and "混有" in shown
    assert "（估算词元，字符数 / 4）：中位数" in shown
    prose = re.sub(r"`[^`]*`|[\w.-]+\.jsonl(:\d+)?|\((Alpaca|OpenAI / HF messages)\)|user|assistant|"
                   r"html to text|—[^|]*\|", "", shown)
    assert not re.search(r"[A-Za-z]{3,}(?: [A-Za-z]{2,})+", prose), prose
    assert translated_markdown(english, "en") == english


def test_pair_verdicts_read_in_chinese_whatever_their_shape():
    votes = [ratings.Vote("Kestrel", "Finch", "a", f"r{i}") for i in range(30)]  # separated
    # open, with a tie left out of the win rate
    votes += [ratings.Vote("Heron", "Ibis", winner, f"s{i}") for i, winner in enumerate(["a", "b", "tie"])]
    votes += [ratings.Vote("Wren", "Crane", "tie", "t")]  # nothing decisive yet
    lines = [verdict["text"] for verdict in verdicts.pair_verdicts(votes)]
    shown = [translated(line, "zh") for line in lines]
    assert len(shown) == 3 and all(not LATIN_WORDS.search(line) for line in shown), shown
    assert "Kestrel 胜过 Finch：胜率 100%，95% 置信区间" in shown[0] and "，30 票" in shown[0]


def test_model_names_read_in_chinese_also_inside_the_sentences_that_hold_them(workspace):
    from core.evaluate.names import DEFAULT_NAME
    from core.inference import list_choices

    tuned = "kestrel · adapter (run 2026-12-01 00:47)"  # a run's name as core/evaluate/names.py gives it
    assert translated(DEFAULT_NAME, "zh") == "默认模型（SmolLM2-135M-Instruct）"
    assert translated(tuned, "zh") == "kestrel · 适配器（2026-12-01 00:47 的运行）"
    votes = [ratings.Vote(tuned, DEFAULT_NAME, winner, f"r{i}") for i, winner in enumerate("aab")]
    lines = [verdict["text"] for verdict in verdicts.pair_verdicts(votes)]
    lines += ratings.separation_text([{"better": tuned, "worse": DEFAULT_NAME, "more_votes": 7}])
    for line in lines:
        shown = translated(line, "zh")
        assert "kestrel · 适配器（2026-12-01 00:47 的运行）" in shown and "默认模型（SmolLM2-135M-Instruct）" in shown
        assert not LATIN_WORDS.search(shown.replace("kestrel", "")), shown
    labels = [translated(choice.label, "zh") for choice in list_choices(workspace)]
    assert labels and all("Default model" not in label for label in labels), labels


def test_preset_names_and_their_notes_on_a_cpu_read_in_chinese():
    for name in PRESETS:
        gate = preset_gate(name, capabilities(CPU), CPU)
        assert translated(name, "zh") != name or not LATIN_WORDS.search(name), name
        assert gate.reason and not LATIN_WORDS.search(translated(gate.reason, "zh")), gate.reason


def test_every_reason_a_machine_gives_for_greying_a_control_out_reads_in_chinese():
    import dataclasses

    reasons = set()
    for kind, bf16 in (("cpu", False), ("mps", False), ("cuda", False), ("cuda", True)):
        for installed in (False, True):
            device = dataclasses.replace(CPU, kind=kind, bf16=bf16, bitsandbytes=installed, llama_cpp=installed)
            gates = capabilities(device, offline=not installed)
            reasons |= {getattr(gates, field.name).reason for field in dataclasses.fields(gates)}
    reasons.discard("")
    assert len(reasons) >= 10
    for reason in reasons:  # library names (bitsandbytes, llama-cpp-python) stay; no English sentence does
        assert not re.search(r"[A-Za-z]{2,}(?: [A-Za-z]{2,}){2,}", translated(reason, "zh")), reason


def test_an_unknown_sentence_and_english_stay_as_written():
    assert translated("Converter exited with code 1", "zh") == "Converter exited with code 1"
    assert translated("Done: 30 steps in 12 s; adapter saved.", "en") == "Done: 30 steps in 12 s; adapter saved."


def test_error_lines_lead_with_the_error_class_in_chinese_and_stay_as_before_in_english():
    error = BadInputError("Row 3 has no assistant turn.", "Add one or drop the row.")
    assert error_line(error) == f"❌ {describe(error)}"  # English exactly as the app always showed it
    assert error_line(error, "zh") == f"❌ {say('error.BadInputError', 'zh')} {describe(error)}"
    assert error_line(DiskFullError("No space."), "zh").startswith(f"❌ {say('error.DiskFullError', 'zh')}")
    assert error_line(RuntimeError("boom"), "zh").startswith(f"❌ {say('error.other', 'zh')} RuntimeError")


def test_the_train_tab_shows_a_finished_run_in_the_browsers_language(workspace):
    ctx = AppContext(workspace, _device=CPU)
    run_dir = workspace.runs / "done-run"
    run_dir.mkdir(parents=True)
    runs.write_config(run_dir, TrainSettings(dataset="/d/v1"))
    (run_dir / "job.json").write_text(json.dumps({"kind": "train", "title": "done-run", "created": time.time(),
                                                  "heavy": True, "target": start.TARGET, "params": {}}))
    (run_dir / "status.json").write_text(json.dumps({
        "state": "succeeded", "step": 30, "total": 30, "message": "Done: 30 steps in 12 s; adapter saved.",
        "started": time.time() - 12, "ended": time.time()}))
    (run_dir / "events.jsonl").write_text(json.dumps({"step": 30, "loss": 1.2, "tokens_per_s": 1500}) + "\n")

    english = train_runs.run_view(ctx, "done-run")[1]
    chinese = train_runs.run_view(ctx, "done-run", "zh")[1]

    assert english.startswith("**succeeded** · Done: 30 steps in 12 s; adapter saved. · elapsed 0:00:12 · 1,500 "
                              "tokens/s")
    assert chinese.startswith("**已完成** · 完成：30 步，用时 12 秒；适配器已保存。 · 已用时 0:00:12 · 1,500 词元/秒")


def test_start_as_gradio_calls_it_refuses_a_missing_dataset_in_the_browsers_language(workspace):
    """Gradio hands a handler the request only when its signature asks for one (before any *args), so the
    Start button's handler is called here as Gradio calls it: inputs in, request slotted in by Gradio."""
    import app
    from gradio.helpers import special_args

    ctx = AppContext(workspace, _device=CPU)
    demo = app.build_app(ctx)
    block = next(fn for fn in demo.fns.values() if fn.name == "on_start_click")
    inputs = [block_input.value for block_input in block.inputs]
    inputs[block.inputs.index(next(b for b in block.inputs if b.elem_id == "train-dataset"))] = "/no/such/dataset"
    for language, lead in (("zh-CN,zh;q=0.9", f"❌ {say('error.BadInputError', 'zh')} "), ("en-US", "❌ ")):
        request = SimpleNamespace(headers={"accept-language": language}, username=None, cookies={})
        note, _ = block.fn(*special_args(block.fn, list(inputs), request)[0])
        assert note.startswith(lead) and "/no/such/dataset" in note, note
        assert language.startswith("zh") or say("error.BadInputError", "en") not in note  # English as before
