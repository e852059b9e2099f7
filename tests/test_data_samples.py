"""Data stage: the shipped samples cover the four formats and teach one consistent identity."""

from __future__ import annotations

import subprocess
import sys

from core.data import PrepareOptions, prepare
from tests.conftest import ROOT

SAMPLES = ROOT / "assets" / "samples"
FILES = ["identity_alpaca.json", "everyday_sharegpt.json", "science_ultrachat.jsonl", "coding_messages.jsonl",
         "general_zh.csv"]


def test_samples_cover_the_four_formats_and_are_all_kept():
    prepared = prepare([SAMPLES / name for name in FILES], PrepareOptions(model=""))
    report = prepared.report
    assert {f["format"] for f in report["files"]} == {"alpaca", "sharegpt", "ultrachat", "messages"}
    assert report["kept"] == report["rows"] >= 250 and not report["dropped"]
    assert report["duplicates"] == report["near_duplicates"] == 0


def test_identity_answers_start_with_the_name_in_both_languages():
    prepared = prepare([SAMPLES / name for name in FILES], PrepareOptions(model=""))
    answers = [m["content"] for r in prepared.records for m in r["messages"] if m["role"] == "assistant"]
    english = [a for a in answers if a.startswith("I'm Kestrel, a small assistant fine-tuned with Chatsmith.")]
    chinese = [a for a in answers if a.startswith("我是 Kestrel，一个用 Chatsmith 微调的小型助手。")]
    assert len(english) + len(chinese) >= 80 and len(chinese) >= 25
    assert not any("{{" in a for a in answers)
    renamed = prepare([SAMPLES / "identity_alpaca.json"], PrepareOptions(model="", placeholders={
        "name": "Wren", "author": "Ada"}))
    assert renamed.records[0]["messages"][-1]["content"].startswith("I'm Wren, a small assistant fine-tuned with Ada.")


def test_make_samples_reproduces_the_shipped_files(tmp_path):
    subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), str(tmp_path)], check=True,
                   capture_output=True, timeout=60)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
