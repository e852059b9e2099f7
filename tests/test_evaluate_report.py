"""Run reports and write-ups hold what they claim: settings, dataset, curves, metrics, arena, energy, hashes."""

import hashlib
import json
import subprocess
import sys

import yaml

from core.evaluate import report
from core.evaluate.arena import Arena

TRAIN_REPORT = "# Run tuned\n\n## Masked-token sample\n`<|im_start|>assistant` **Paris.**\n"


def make_run(workspace, name, learning_rate, losses):
    folder = workspace.runs / name
    (folder / "adapter").mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(
        {"model": "default", "dataset": "demo-abc123", "seed": 42, "learning_rate": learning_rate}))
    events = [{"time": 1000.0 + 1800 * i, "step": 10 * (i + 1), "loss": loss, "power_w": 100.0}
              for i, loss in enumerate(losses)]
    events.append({"time": events[-1]["time"], "step": events[-1]["step"], "eval_loss": losses[-1] + 0.1,
                   "power_w": 100.0})
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def populate(workspace):
    run = make_run(workspace, "tuned", 2e-4, [2.0, 1.5, 1.25])  # 2 × 1800 s at 100 W = 100 Wh
    (run / "report.md").write_text(TRAIN_REPORT)
    dataset = workspace.datasets / "demo-abc123"
    dataset.mkdir()
    (dataset / "train.jsonl").write_text("{}\n" * 8)
    (dataset / "validation.jsonl").write_text("{}\n" * 2)
    job = workspace.jobs / "metrics-1"
    job.mkdir()
    (job / "metrics.json").write_text(json.dumps({
        "model": {"kind": "adapter", "label": "Run tuned · adapter", "adapter": str(run / "adapter")},
        "data": str(dataset), "summary": {"samples": 2, "rouge_l": 0.625, "bleu": 12.5, "loss": 1.3,
                                          "perplexity": 3.67, "mean_length": 7, "empty_rate": 0.0,
                                          "looping_rate": 0.5}}))
    export = workspace.exports / "tuned-q8_0" / "model.gguf"
    export.parent.mkdir(parents=True)
    export.write_bytes(b"GGUF fake bytes")
    arena = Arena(workspace.ratings_db, rate_limit=None)
    for i in range(6):
        battle = arena.new_battle(["run/tuned", "default"], [{"role": "user", "content": "hi"}], "r")
        arena.save_answers(battle, "one", "two")
        model_a, _ = arena.contenders_of(battle)
        arena.vote(battle, "a" if model_a == "run/tuned" else "b", "r", f"k{i}")
    return export


def test_run_report_holds_what_it_claims(workspace):
    export = populate(workspace)
    paths = report.write_run_report(workspace, "tuned")
    text = paths["markdown"].read_text()
    assert paths["markdown"].name == "evaluation.md" and (workspace.runs / "tuned" / "report.md").read_text() == TRAIN_REPORT
    assert "Seed: 42" in text and "| learning_rate | 0.0002 |" in text
    assert "| transformers |" in text and "| torch |" in text
    assert "demo-abc123 · hash abc123 · 8 train / 2 validation rows" in text
    assert paths["loss_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "![loss curves](loss.png)" in text
    assert "Final training loss 1.2500 · best validation loss 1.3500." in text
    assert "| **Run tuned · adapter** | demo-abc123 | 2 | 1.30 | 3.67 | 0.625 | 12.50 | 7.0 | 0% | 50% |" in text
    assert "| run/tuned |" in text and "| default |" in text and "6 / 0 / 0 / 0" in text
    assert "100.00 Wh over 60.0 min" in text
    assert f"| tuned-q8_0/model.gguf | {hashlib.sha256(export.read_bytes()).hexdigest()} |" in text
    assert "## Training report" in text and "### Masked-token sample" in text and "**Paris.**" in text
    html = paths["html"].read_text()
    assert "<table>" in html and '<img src="loss.png"' in html and "Masked-token sample" in html


def test_report_command_and_missing_run(workspace):
    populate(workspace)
    command = [sys.executable, "-m", "core.evaluate", "--workspace", str(workspace.root), "report"]
    written = json.loads(subprocess.run(command + ["tuned"], capture_output=True, text=True, check=True).stdout)
    assert written["markdown"].endswith("evaluation.md")
    missing = subprocess.run(command + ["nope"], capture_output=True, text=True)
    assert missing.returncode == 2 and "no run called 'nope'" in missing.stderr


def test_writeup_compares_runs(workspace):
    populate(workspace)
    make_run(workspace, "baseline", 1e-4, [2.5, 2.25])
    path = report.write_writeup(workspace, ["tuned", "baseline"])
    text = path.read_text()
    assert text.startswith("# Write-up: tuned, baseline")
    assert "| learning_rate | 0.0002 | 0.0001 |" in text and "| seed |" not in text  # only what differed
    assert "| tuned | 1.2500 | 1.3500 |" in text and "| baseline | 2.2500 | 2.3500 |" in text
    assert path.with_suffix(".html").is_file() and path.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
