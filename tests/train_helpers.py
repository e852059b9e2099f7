"""Helpers of the Train tests (no tests, no fixtures here): a dataset version, tiny settings, a fake reporter."""

from __future__ import annotations

import json
from pathlib import Path

from core.train.settings import TrainSettings

ANSWERS = ["Sure.", "I am Kestrel, a small assistant.", "Paris is the capital of France.",
           "Two plus two is four.", "Water boils at 100 °C at sea level, a little lower up a mountain."]


def write_version(folder: Path, rows: int = 40, validation: int = 8, source: str = "samples") -> Path:
    """A dataset version as the Data stage writes it: canonical records, one per line."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"id": f"{source}-{i}", "source": source, "messages": [
        {"role": "user", "content": f"Question number {i}?"},
        {"role": "assistant", "content": ANSWERS[i % len(ANSWERS)]},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": ANSWERS[(i + 1) % len(ANSWERS)]},
    ][: 2 if i % 3 else 4]} for i in range(rows + validation)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:rows]))
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[rows:]))
    return folder


def tiny_settings(model_dir: Path, dataset: Path, **changes) -> TrainSettings:
    values = dict(model=str(model_dir), dataset=str(dataset), max_steps=2, batch_size=4, logging_steps=1,
                  eval_steps=0, save_steps=1, learning_rate=1e-2, max_length=256)
    return TrainSettings(**{**values, **changes})


class FakeReporter:
    """Stands in for a JobContext in in-process runs; keeps what it was told."""

    def __init__(self, folder: Path, stop_after: int | None = None):
        self.folder, self.params = folder, {}
        self.lines, self.events, self.stop_after, self.step = [], [], stop_after, 0

    def log(self, line):
        self.lines.append(line)

    def event(self, **metrics):
        self.events.append(metrics)

    def progress(self, step, total=None, message=None):
        self.step = step

    def should_stop(self):
        return self.stop_after is not None and self.step >= self.stop_after
