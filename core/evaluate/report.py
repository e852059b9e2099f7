"""Run reports and multi-run write-ups, in Markdown and HTML, with loss-curve PNGs.

A run report is written beside the run as `evaluation.md`, `evaluation.html` and `loss.png`. The Train
stage owns `report.md`; rather than rewrite it, the evaluation report embeds it whole (its masked-token
sample included) under "Training report", so `evaluation.md` is the complete document (the model card
text) and regenerating it after each new evaluation never loses what Train wrote. Sections: settings and
seed, package versions, dataset hash and stats, loss curves, automatic metrics (every `metrics.json`
under `workspace.jobs` for this run or a base model), arena standing, energy and cost, export hashes.
A write-up compiles several runs into one comparison under `workspace.root/reports/`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import time
from pathlib import Path

import yaml

from core import atomic
from core.errors import BadInputError
from core.evaluate import plots, ratings
from core.jobs import read_events
from core.workspace import Workspace

PACKAGES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "llama_cpp_python", "gradio")
PRICE_PER_KWH = 0.30  # a stated figure in the report's currency-neutral "cost"; edit to your tariff


def run_facts(workspace: Workspace, run: str) -> dict:
    """Everything the report states about one run, read from files (missing parts read as empty)."""
    folder = workspace.named(workspace.runs, run, "run")
    if not folder.is_dir():
        raise BadInputError(f"There is no run called '{run}' in {workspace.runs}.", "Pick a run from the Train tab.")
    config = _yaml(folder / "config.yaml")
    events = read_events(folder)
    return {"run": run, "folder": folder, "config": config, "events": events,
            "dataset": dataset_facts(workspace, str(config.get("dataset", ""))),
            "metrics": metrics_for(workspace, run), "arena": arena_rows(workspace),
            "energy": energy(events), "exports": export_hashes(workspace, run),
            "train_report": _text(folder / "report.md")}


def dataset_facts(workspace: Workspace, dataset: str) -> dict:
    folder = workspace.datasets / Path(dataset).name if dataset else None
    if not folder or not folder.is_dir():
        return {"name": dataset or "—"}
    report = _json(folder / "report.json")
    return {"name": folder.name, "hash": folder.name.rsplit("-", 1)[-1],
            "train_rows": _lines(folder / "train.jsonl"), "validation_rows": _lines(folder / "validation.jsonl"),
            "report": {k: v for k, v in report.items() if isinstance(v, (int, float, str))}}


def metrics_for(workspace: Workspace, run: str) -> list[dict]:
    """Metrics results about this run's adapter, plus base models and GGUFs as baselines."""
    adapter = str((workspace.runs / run / "adapter").resolve())
    results = []
    for path in sorted(workspace.jobs.glob("*/metrics.json")):
        result = _json(path)
        model = result.get("model", {})
        mine = model.get("adapter") and str(Path(model["adapter"]).resolve()) == adapter
        if mine or model.get("kind") in ("base", "gguf"):
            results.append({**result, "this_run": bool(mine)})
    return results


def arena_rows(workspace: Workspace) -> list[dict]:
    if not workspace.ratings_db.exists():
        return []
    from core.evaluate.arena import Arena

    return ratings.leaderboard(Arena(workspace.ratings_db).votes(), rounds=300)


def energy(events: list[dict]) -> dict:
    """Watt-hours from the power readings Train logs with each event (trapezoids over time)."""
    points = [(e["time"], e["power_w"]) for e in events if "time" in e and "power_w" in e]
    wh = sum((t2 - t1) * (p1 + p2) / 2 for (t1, p1), (t2, p2) in zip(points, points[1:])) / 3600
    seconds = points[-1][0] - points[0][0] if len(points) > 1 else 0.0
    return {"wh": wh, "seconds": seconds, "cost": wh / 1000 * PRICE_PER_KWH, "measured": len(points) > 1}


def export_hashes(workspace: Workspace, run: str) -> list[tuple[str, str]]:
    """SHA-256 of each exported file whose path names the run (GGUF and safetensors)."""
    found = [p for p in sorted(workspace.exports.rglob("*")) if p.is_file() and run in p.as_posix()
             and p.suffix in (".gguf", ".safetensors")]
    return [(p.relative_to(workspace.exports).as_posix(), _sha256(p)) for p in found]


def run_markdown(facts: dict, loss_png: str | None) -> str:
    config, dataset = facts["config"], facts["dataset"]
    settings = sorted((key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
                      for key, value in config.items())
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sections = [
        f"# Run {facts['run']}: evaluation report\n\n_Generated {generated}._",
        f"## Settings\nSeed: {config.get('seed', '—')}\n\n" + _table(["setting", "value"], settings),
        "## Package versions\n" + _table(["package", "version"], [(p, _version(p)) for p in PACKAGES]),
        f"## Dataset\n{dataset['name']} · hash {dataset.get('hash', '—')} · "
        f"{dataset.get('train_rows', '—')} train / {dataset.get('validation_rows', '—')} validation rows",
        "## Loss curves\n" + (f"![loss curves]({loss_png})" if loss_png else "No loss events logged yet.")
        + "\n\n" + _final_losses(facts["events"]),
        "## Automatic metrics\n" + metrics_table(facts["metrics"]),
        "## Arena standing\n" + arena_table(facts["arena"]),
        "## Energy and cost\n" + _energy_text(facts["energy"]),
        "## Export hashes\n" + (_table(["file", "sha256"], facts["exports"]) if facts["exports"] else "No exports yet."),
    ]
    if facts["train_report"]:
        sections.append("## Training report\n\n" + _demote(facts["train_report"]))
    return "\n\n".join(sections) + "\n"


def _energy_text(spent: dict) -> str:
    if not spent["measured"]:
        return "Not measured (no power readings in events.jsonl)."
    return (f"{spent['wh']:.2f} Wh over {spent['seconds'] / 60:.1f} min of training · about "
            f"{spent['cost']:.4f} at {PRICE_PER_KWH} per kWh (power as Train logged it)")


def metrics_table(results: list[dict]) -> str:
    if not results:
        return "No automatic metrics yet (Evaluate tab → Metrics, or `python -m core.evaluate metrics`)."
    rows = []
    for result in results:
        s = result.get("summary", {})
        name = result.get("model", {}).get("label") or result.get("model", {}).get("id", "?")
        rows.append((f"**{name}**" if result.get("this_run") else name, Path(str(result.get("data", ""))).name,
                     s.get("samples"), _fmt(s.get("loss")), _fmt(s.get("perplexity")), _fmt(s.get("rouge_l"), 3),
                     _fmt(s.get("bleu")), _fmt(s.get("mean_length"), 1), _pct(s.get("empty_rate")),
                     _pct(s.get("looping_rate"))))
    return _table(["model", "data", "n", "loss", "perplexity", "ROUGE-L", "BLEU", "length", "empty", "looping"], rows)


def arena_table(rows: list[dict]) -> str:
    if not rows:
        return "No votes yet."
    table = _table(["model", "BT rating", "95 % CI", "Elo", "battles", "W / L / tie / both bad"],
                   [(r["model"], r["bt"], f"{r['ci_low']} – {r['ci_high']}", r["elo"], r["battles"],
                     f"{r['wins']} / {r['losses']} / {r['ties']} / {r['both_bad']}") for r in rows])
    advice = ratings.separation_text(ratings.votes_to_separate(rows, sum(r["battles"] for r in rows) // 2))
    return table + "".join(f"\n- {line}" for line in advice)


def write_run_report(workspace: Workspace, run: str) -> dict[str, Path]:
    facts = run_facts(workspace, run)
    png = plots.loss_curves({run: facts["events"]}, facts["folder"] / "loss.png")
    markdown = run_markdown(facts, png.name if png else None)
    paths = {"markdown": atomic.write_text(facts["folder"] / "evaluation.md", markdown),
             "html": atomic.write_text(facts["folder"] / "evaluation.html", to_html(markdown, f"Run {run}"))}
    if png:
        paths["loss_png"] = png
    return paths


def write_writeup(workspace: Workspace, runs: list[str]) -> Path:
    """One comparison document for several runs: settings that differ, losses, metrics, arena."""
    facts = [run_facts(workspace, run) for run in runs]
    folder = workspace.root / "reports"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    png = plots.loss_curves({f["run"]: f["events"] for f in facts}, folder / f"writeup-{stamp}.png")
    keys = sorted({key for f in facts for key in f["config"]})
    differing = [key for key in keys if len({json.dumps(f["config"].get(key), default=str) for f in facts}) > 1]
    lines = [f"# Write-up: {', '.join(runs)}", "", "## What differed",
             _table(["setting", *runs], [(key, *[str(f["config"].get(key, "—")) for f in facts]) for key in differing])
             if differing else "The runs share every setting.", "", "## Loss",
             _table(["run", "final train loss", "best eval loss"],
                    [(f["run"], *_loss_pair(f["events"])) for f in facts]),
             f"\n![loss curves]({png.name})" if png else "", "", "## Automatic metrics",
             metrics_table([m for f in facts for m in f["metrics"] if m["this_run"]]), "", "## Arena standing",
             arena_table(facts[0]["arena"]), "", "## Energy",
             _table(["run", "Wh", "minutes"], [(f["run"], _fmt(f["energy"]["wh"]), _fmt(f["energy"]["seconds"] / 60, 1))
                                              for f in facts])]
    markdown = "\n".join(lines) + "\n"
    atomic.write_text(folder / f"writeup-{stamp}.html", to_html(markdown, "Write-up"))
    return atomic.write_text(folder / f"writeup-{stamp}.md", markdown)


def to_html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt  # ships with gradio

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;max-width:60rem;margin:2rem auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head>"
            f"<body>{body}</body></html>\n")


def _final_losses(events: list[dict]) -> str:
    final, best = _loss_pair(events)
    return f"Final training loss {final} · best validation loss {best}."


def _loss_pair(events: list[dict]) -> tuple[str, str]:
    train = [e["loss"] for e in events if e.get("loss") is not None]
    evals = [e["eval_loss"] for e in events if e.get("eval_loss") is not None]
    return _fmt(train[-1] if train else None, 4), _fmt(min(evals) if evals else None, 4)


def _table(header: list[str], rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _demote(markdown: str) -> str:
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines())


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        return 0
