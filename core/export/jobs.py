"""Job targets of the Export stage: `core.export.jobs:<step>` for the job runner, and the CLI's steps.

Each target takes a context with `params`, `progress(step, total, message)` and `log(line)`: the job
runner's `JobContext` in the app, a console context in `python -m core.export`. Parameters hold no
secrets (they are written to job.json), which is why Hub pushes are not jobs: they run in the caller,
with the token passed per call, never written to disk.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from core.export import backup as backup_module
from core.export import gguf as gguf_module
from core.export import roundtrip as roundtrip_module
from core.export import verdicts
from core.export.fuse import FuseSettings, fuse_runs
from core.export.merge import MergeSettings, ensure_merged, merge_run
from core.export.package import package_adapter, training_system_prompt
from core.export.run import Run, open_run
from core.export.space import SpaceSettings, build_space
from core.workspace import Workspace


def _run(ctx) -> tuple[Workspace, Run]:
    workspace = Workspace(Path(ctx.params["workspace"])).ensure()
    return workspace, open_run(workspace, ctx.params["run"])


def _out(ctx) -> Path | None:
    return Path(ctx.params["out"]) if ctx.params.get("out") else None


def adapter(ctx) -> dict[str, Any]:
    _, run = _run(ctx)
    ctx.progress(0, 1, "Packaging the adapter…")
    folder = package_adapter(run, _out(ctx))
    ctx.progress(1, 1, "Adapter package ready.")
    return {"folder": str(folder)}


def merge(ctx) -> dict[str, Any]:
    workspace, run = _run(ctx)
    ctx.progress(0, 1, "Merging the adapter into the base model…")
    folder = merge_run(workspace, run, MergeSettings(dtype=ctx.params.get("dtype", "auto")), _out(ctx))
    ctx.progress(1, 1, "Merged model ready (logits checked against base + adapter).")
    return {"folder": str(folder)}


def gguf(ctx) -> dict[str, Any]:
    """GGUF files; with `check`, the round-trip check runs on them and its verdict is the result's."""
    workspace, run = _run(ctx)
    quants = list(ctx.params.get("quants") or ["Q8_0"])
    ctx.progress(0, None, "Merging (skipped when the merge is up to date)…")
    merged = ensure_merged(workspace, run)
    out = _out(ctx)
    folder = out if out and out.suffix != ".gguf" else run.exports / "gguf"
    manifest = gguf_module.export(merged, folder, run.name, quants, progress=_logged(ctx),
                                  keep_intermediate=bool(ctx.params.get("keep_intermediate")),
                                  system=training_system_prompt(run))
    if out and out.suffix == ".gguf":  # one file asked for by name: the first quantisation requested
        chosen = folder / manifest["files"][quants[0]]["file"]
        if chosen != out:
            shutil.copyfile(chosen, out.with_name(f".{out.name}.partial"))
            os.replace(out.with_name(f".{out.name}.partial"), out)
        manifest["out"] = str(out)
    for quant, entry in manifest["files"].items():
        ctx.log(f"{quant}: {entry['file']} ({entry['bytes'] / 1e6:.1f} MB, stops at {entry['stop']})")
    result = {"folder": str(folder), **manifest}
    if ctx.params.get("check") and folder == run.exports / "gguf":
        result["verdict"] = _check(ctx, workspace, run, merged, _exported_ggufs(run))
        report = json.loads((run.exports / "roundtrip.json").read_text(encoding="utf-8"))
        result["recommended"] = verdicts.gate(manifest["recommended"], report)[0]  # the check has the last word
        result.pop("reason")  # by model size alone; the verdict says the rest
    return result


def roundtrip(ctx) -> dict[str, Any]:
    workspace, run = _run(ctx)
    ctx.progress(0, None, "Merging (skipped when the merge is up to date)…")
    merged = ensure_merged(workspace, run)
    verdict = _check(ctx, workspace, run, merged, _exported_ggufs(run))
    report = json.loads((run.exports / "roundtrip.json").read_text(encoding="utf-8"))
    return {"report": str(run.exports / "roundtrip.json"), "verdict": verdict,
            "models": {k: {"agreement": v["agreement"], "perplexity_vs_f16": v.get("perplexity_vs_f16")}
                       for k, v in report["models"].items()}}


def _check(ctx, workspace: Workspace, run: Run, merged: Path, files: dict[str, Path]) -> str:
    """The round-trip check on `files`: report written, verdict logged line by line and returned."""
    ctx.progress(0, None, "Round-trip check: the same greedy prompts through every exported form…")
    report, _ = roundtrip_module.ensure_report(workspace, run, merged, files,
                                               int(ctx.params.get("max_new_tokens", 24)), log=ctx.log)
    lines = verdicts.summary(report, _manifest(run).get("recommended", ""))
    for line in lines:
        ctx.log(line)
    ctx.progress(1, 1, "Round-trip report written.")
    return " ".join(lines)


def _logged(ctx):
    """`ctx.progress` that also writes each step to the log, so the log reads as the export went."""
    def progress(step: int, total: int | None, message: str) -> None:
        ctx.log(message)
        ctx.progress(step, total, message)
    return progress


def _manifest(run: Run) -> dict[str, Any]:
    path = run.exports / "gguf" / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _exported_ggufs(run: Run) -> dict[str, Path]:
    folder = run.exports / "gguf"
    return {q: folder / e["file"] for q, e in _manifest(run).get("files", {}).items() if (folder / e["file"]).is_file()}


def fuse(ctx) -> dict[str, Any]:
    workspace = Workspace(Path(ctx.params["workspace"])).ensure()
    settings = FuseSettings(runs=tuple(ctx.params["runs"]), weights=tuple(ctx.params.get("weights") or ()),
                            method=ctx.params.get("method", "linear"),
                            density=float(ctx.params.get("density", 0.5)), name=ctx.params.get("name", ""))
    ctx.progress(0, 1, f"Fusing {len(settings.runs)} adapters ({settings.method})…")
    fused = fuse_runs(workspace, settings)
    ctx.progress(1, 1, f"New run {fused.name} written.")
    return {"run": fused.name, "folder": str(fused.folder)}


def space(ctx) -> dict[str, Any]:
    _, run = _run(ctx)
    gguf_path = ctx.params.get("gguf")
    settings = SpaceSettings(target=ctx.params.get("target", "cpu"), gguf=Path(gguf_path) if gguf_path else None,
                             model_repo=ctx.params.get("model_repo", ""),
                             bundle_model=bool(ctx.params.get("bundle_model", True)))
    folder = build_space(run, settings, _out(ctx))
    ctx.progress(1, 1, f"Space bundle ready in {folder}.")
    return {"folder": str(folder)}


def backup(ctx) -> dict[str, Any]:
    workspace, run = _run(ctx)
    ctx.progress(0, 1, "Writing the backup archive…")
    gguf_path = ctx.params.get("gguf")
    archive = backup_module.backup_run(workspace, run, Path(ctx.params["out"]),
                                       Path(gguf_path) if gguf_path else None)
    ctx.progress(1, 1, f"Backup written: {archive}")
    return {"archive": str(archive), "bytes": archive.stat().st_size}


def restore(ctx) -> dict[str, Any]:
    workspace = Workspace(Path(ctx.params["workspace"])).ensure()
    folder = backup_module.restore_archive(workspace, Path(ctx.params["archive"]), ctx.params.get("name"))
    ctx.progress(1, 1, f"Restored run {folder.name} (all hashes verified).")
    return {"run": folder.name, "folder": str(folder)}
