"""What the Export tab offers for a run, computed without loading any model (the tab stays quick).

Sizes come from safetensors headers (`gguf.plan`) of the merged folder if it exists, else the base
model's folder; the default model is planned from its materialised folder, which training creates. Run
names come from the page, so each one goes through `Workspace.named` before it becomes a path.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.export import gguf, verdicts
from core.export.run import run_settings
from core.models import DEFAULT_ALIASES, default_model_dir
from core.workspace import Workspace


def quant_options(workspace: Workspace, run_name: str) -> tuple[list[tuple[str, str]], list[str], str]:
    """(checkbox choices labelled with their estimated size, the recommended pre-selection, its reason)."""
    folder = _plan_folder(workspace, run_name)
    if folder is None:
        return [(quant, quant) for quant in gguf.QUANTS], ["Q8_0"], ""
    estimate = gguf.plan(folder)
    recommended, why = verdicts.gate(estimate.recommended, _roundtrip_report(workspace, run_name))
    labels = [(f"{quant} · ~{estimate.sizes[quant] / 1e6:,.0f} MB"
               + (" · recommended" if quant == recommended else ""), quant) for quant in gguf.QUANTS]
    return labels, [recommended], f"{why} (Before the check: {estimate.reason})" if why else estimate.reason


def gguf_files(workspace: Workspace, run_name: str) -> list[str]:
    """Exported GGUFs of a run, smallest first (what a Space or backup would bundle)."""
    folder = workspace.named(workspace.exports, run_name, "run") / "gguf"
    return [str(p) for p in sorted(folder.glob("*.gguf"), key=lambda p: p.stat().st_size)] if folder.is_dir() else []


def job_folder(workspace: Workspace, run_name: str) -> Path:
    """One job folder per run under `workspace.jobs`, where the job list finds it after a restart."""
    return workspace.named(workspace.jobs, f"export-{run_name or 'workspace'}", "run")


def roundtrip_markdown(workspace: Workspace, run_name: str) -> str:
    """The round-trip report as a table in words, led by what it means for the recommendation."""
    report = _roundtrip_report(workspace, run_name)
    if report is None:
        return ""
    rows = ["| model | greedy answers vs the reference | token agreement | perplexity vs F16 |", "|---|---|---|---|"]
    for name, entry in report["models"].items():
        ratio = entry.get("perplexity_vs_f16")
        rows.append(f"| {name} | {verdicts.divergence_text(entry['first_divergence'])} | {entry['agreement']:.0%} | "
                    f"{'' if ratio is None else f'{ratio:.3f}'} |")
    four_bit = report.get("trained_in_4bit") or {}
    note = four_bit.get("note") or (f"Trained on a 4-bit base, not compared here: {four_bit['reason']}."
                                    if four_bit else "")
    prompts = "; ".join(f"{i}. {prompt}" for i, prompt in enumerate(report.get("prompts", []), start=1))
    verdict = verdicts.summary(report, _manifest_recommendation(workspace, run_name))
    return ("\n\n".join(verdict) + "\n\n" if verdict else "") + (
        f"Reference: {report['reference']}, greedy, {report['max_new_tokens']} new tokens. Prompts: {prompts}\n\n"
        + "\n".join(rows) + (f"\n\n{note}" if note else ""))


def _roundtrip_report(workspace: Workspace, run_name: str) -> dict | None:
    path = workspace.named(workspace.exports, run_name, "run") / "roundtrip.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:  # a report cut short by a crash is as good as none: the check can run again
        return None


def _manifest_recommendation(workspace: Workspace, run_name: str) -> str:
    path = workspace.named(workspace.exports, run_name, "run") / "gguf" / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("recommended", "") if path.is_file() else ""
    except ValueError:
        return ""


def _plan_folder(workspace: Workspace, run_name: str) -> Path | None:
    if not run_name:
        return None
    merged = workspace.named(workspace.exports, run_name, "run") / "merged"
    if (merged / "config.json").is_file():
        return merged
    reference = run_settings(workspace.named(workspace.runs, run_name, "run")).model
    folder = default_model_dir(workspace) if reference in DEFAULT_ALIASES else Path(reference)
    return folder if list(folder.glob("*.safetensors")) else None
