"""What the Data tab shows, computed without Gradio: detections, preview pages, the length plot.

Contract: pure functions from paths, a `Prepared` or a report to plain values (markdown text, lists of
dicts, a matplotlib figure). `keep_upload` copies an uploaded file into `workspace.uploads` unchanged, so
the original the user gave is never touched and a saved dataset can always be traced to its input; it
refuses uploads past the count limit or the disk quota (`UploadLimits`).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from core.data import formats
from core.data.options import UploadLimits
from core.data.pipeline import Prepared, inspect
from core.errors import BadInputError, describe
from core.workspace import Workspace

KEPT = "kept"


def keep_upload(workspace: Workspace, uploaded: str | Path, limits: UploadLimits = UploadLimits()) -> Path:
    """A copy in uploads/ under the file's own name (a short hash added when the name is taken)."""
    uploaded = Path(uploaded)
    target = workspace.named(workspace.uploads, uploaded.name, "upload")
    if target.exists() and _digest(target) != _digest(uploaded):
        target = target.with_name(f"{uploaded.stem}-{_digest(uploaded)[:8]}{uploaded.suffix}")
    if not target.exists():
        _check_upload_room(workspace.uploads, uploaded.stat().st_size, limits)
        shutil.copyfile(uploaded, target.with_name(f".{target.name}.tmp"))
        target.with_name(f".{target.name}.tmp").replace(target)
    return target


def _check_upload_room(folder: Path, size: int, limits: UploadLimits) -> None:
    kept = [path for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")]
    if len(kept) >= limits.max_files:
        raise BadInputError(f"The workspace already keeps {len(kept)} uploads; the limit is {limits.max_files}.",
                            "Delete old files from uploads/ or raise CHATSMITH_MAX_UPLOADS.")
    used = sum(path.stat().st_size for path in kept)
    if used + size > limits.quota_mb * 2**20:
        raise BadInputError(f"This upload ({size / 2**20:,.1f} MB) would take uploads/ past its quota of "
                            f"{limits.quota_mb:,} MB ({used / 2**20:,.1f} MB used).",
                            "Delete old files from uploads/ or raise CHATSMITH_UPLOAD_QUOTA_MB.")


def _digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def detect_files(paths: list[Path]) -> tuple[str, list[str], list[str]]:
    """Markdown table of each file's detected format and evidence, the undetected files' fields, and errors."""
    rows, fields, errors = ["| file | format | evidence |", "|---|---|---|"], set(), []
    for path in paths:
        try:
            detection = inspect(path)
        except BadInputError as error:
            errors.append(describe(error))
            rows.append(f"| {path.name} | ❌ | {describe(error)} |")
            continue
        if not detection.format:
            fields.update(detection.fields)
        rows.append(f"| {path.name} | {detection.format or '❓ map columns below'} | {detection.evidence} |")
    return "\n".join(rows) if paths else "", sorted(fields), errors


def preview_choices(prepared: Prepared | None) -> list[str]:
    reasons = sorted({reject.reason for reject in prepared.rejects}) if prepared else []
    return [KEPT, *reasons]


def preview_items(prepared: Prepared | None, choice: str) -> list[dict]:
    """Items of one filter: {"messages", "raw", "where"}; kept records are their own raw form."""
    if prepared is None:
        return []
    if choice == KEPT:
        return [{"messages": r["messages"], "raw": r, "where": f"{r['source']} · {r['id']}"} for r in prepared.records]
    items = []
    for reject in prepared.rejects:
        if reject.reason == choice:
            items.append({"messages": _turns_of(reject.raw), "raw": reject.raw,
                          "where": f"{reject.file}:{reject.line} — {reject.detail}"})
    return items


def _turns_of(raw) -> list[dict]:
    """The turns of a dropped row as far as they can be read; [] when even that fails."""
    try:
        return formats.to_turns(raw, formats.row_format(raw))[0]
    except formats.RowError:
        return []


def chat_view(messages: list[dict]) -> list[dict]:
    """Chatbot messages: system and tool turns shown as labelled assistant bubbles (Chatbot has no such roles)."""
    view = []
    for turn in messages:
        if turn["role"] in ("user", "assistant"):
            view.append({"role": turn["role"], "content": turn["content"]})
        else:
            view.append({"role": "assistant", "content": turn["content"],
                         "metadata": {"title": "⚙️ system" if turn["role"] == "system" else "🔧 tool"}})
    return view


def histogram_figure(report: dict):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    histogram, unit = report["length"]["histogram"], report["length"]["unit"]
    edges, counts = histogram["edges"], histogram["counts"]
    figure = Figure(figsize=(7, 2.6), tight_layout=True)
    axes = figure.add_subplot()
    axes.bar(edges[:-1], counts, width=edges[1] - edges[0], align="edge", color="#5b8def")
    cutoff = histogram["cutoff"]
    if cutoff and cutoff <= edges[-1]:
        axes.axvline(cutoff, color="#d62728", linestyle="--", label=f"cutoff {cutoff}")
        axes.legend()
    elif cutoff:
        axes.set_title(f"cutoff {cutoff} is beyond every conversation", fontsize=9)
    axes.set_xlabel(f"length in {unit}")
    axes.set_ylabel("conversations")
    return figure


def parse_caps(text: str) -> dict[str, int]:
    """`source=N, other=M` → {"source": N, "other": M}."""
    caps = {}
    for item in filter(None, (part.strip() for part in text.replace("\n", ",").split(","))):
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise BadInputError(f"Cap {item!r} is not SOURCE=NUMBER.", "Write caps like `alpaca_en=500, identity=100`.")
        caps[name.strip()] = int(value)
    return caps


def template_runs(messages: list[dict], model: str) -> list[tuple[str, str | None]]:
    """The conversation in the model's chat template, trained tokens labelled (needs a real tokenizer)."""
    from core.data import lengths
    from core.masks import highlight_trained

    if not model:
        raise BadInputError("The template render needs a model's tokenizer.", 'Set the model to "default" or a folder.')
    return highlight_trained(lengths.load(model), messages)


def sources_for(paths: list[Path], mapping) -> list:
    """Sources for a run: the hand mapping goes to the files whose format was not detected."""
    from core.data.options import Source

    sources = []
    for path in paths:
        undetected = mapping is not None and mapping.is_set and not inspect(path).format
        sources.append(Source(path, mapping=mapping if undetected else None))
    return sources


def versions_table(workspace: Workspace) -> str:
    """Saved dataset versions, newest first, as a markdown table (empty text when there are none)."""
    import json

    from core.data.versions import list_versions

    rows = []
    for folder in list_versions(workspace):
        meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        rows.append(f"| {meta['name']} | {meta['counts']['train']:,} / {meta['counts']['validation']:,} | "
                    f"{meta['created']} | `{folder}` |")
    header = ["| dataset | train / validation | created | folder |", "|---|---|---|---|"]
    return "\n".join(header + rows) if rows else ""
