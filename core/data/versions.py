"""Saved dataset versions: immutable folders named by content hash under `workspace.datasets`.

Contract: `save_version(workspace, prepared, name)` writes `{slug}-{hash12}/` holding `train.jsonl`,
`validation.jsonl`, `report.json`, `report.md`, `README.md` (dataset card) and `dataset.json`, atomically;
saving the same content again returns the existing folder untouched. `list_versions` gives the folders
newest first; `newest_report` the newest conversation version with the report saved in it; `load_split` reads one split back as canonical records. `write_files` writes the same files
into any folder (the CLI's `--out`), one atomic file at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from core import atomic
from core.data import report as report_md
from core.data.pipeline import Prepared
from core.errors import BadInputError
from core.workspace import Workspace

SPLITS = ("train", "validation")


def content_hash(prepared: Prepared, splits: tuple[str, ...] = SPLITS) -> str:
    digest = hashlib.sha256()
    for split in splits:
        digest.update(f"--{split}--\n".encode())
        for record in getattr(prepared, split):
            digest.update(_line(record).encode("utf-8"))
    return digest.hexdigest()[:12]


def save_version(workspace: Workspace, prepared: Prepared, name: str, splits: tuple[str, ...] = SPLITS,
                 write=None) -> Path:
    """`splits` and `write` (a `write_files`-like function) let preference versions be saved the same way."""
    if not prepared.records:
        raise BadInputError("There is nothing to save: no conversation was kept.",
                            "Look at the drop reasons in the report and adjust the settings.")
    digest = content_hash(prepared, splits)
    existing = [p for p in workspace.datasets.glob(f"*-{digest}") if (p / "dataset.json").is_file()]
    if existing:
        return existing[0]
    folder = workspace.datasets / f"{slugify(name)}-{digest}"
    try:
        with atomic.directory(folder) as tmp:
            (write or write_files)(tmp, prepared, name, digest)
    except FileExistsError:  # saved by another session a moment ago: same content, same folder
        pass
    return folder


def write_files(folder: Path, prepared: Prepared, name: str, digest: str | None = None) -> Path:
    folder = Path(folder)
    digest = digest or content_hash(prepared)
    report = prepared.report
    metadata = {"name": name, "hash": digest, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sources": report["sources"], "counts": {s: len(getattr(prepared, s)) for s in SPLITS},
                "options": prepared.options.public()}
    for split in SPLITS:
        atomic.write_text(folder / f"{split}.jsonl", "".join(_line(r) for r in getattr(prepared, split)))
    atomic.write_json(folder / "report.json", report)
    atomic.write_text(folder / "report.md", f"# Data report: {name}\n\n" + report_md.to_markdown(report))
    atomic.write_text(folder / "README.md", dataset_card(name, metadata, report))
    atomic.write_json(folder / "dataset.json", metadata)
    return folder


def list_versions(workspace: Workspace) -> list[Path]:
    versions = []
    for folder in workspace.datasets.iterdir() if workspace.datasets.is_dir() else []:
        try:
            created = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))["created"]
        except (OSError, ValueError, KeyError):
            continue  # a partial or foreign folder is not a version
        versions.append((created, folder.stat().st_mtime, folder))
    return [folder for *_, folder in sorted(versions, reverse=True)]


def newest_report(workspace: Workspace) -> tuple[Path, str, dict] | None:
    """(folder, report.md, report.json) of the newest saved conversation version, or None when there is
    none. Preference versions are skipped: the Data tab shows those in their own section."""
    for folder in list_versions(workspace):
        try:
            if json.loads((folder / "dataset.json").read_text(encoding="utf-8")).get("kind"):
                continue
            report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
            return folder, (folder / "report.md").read_text(encoding="utf-8"), report
        except (OSError, ValueError):
            continue  # a version whose report cannot be read is skipped, not shown half
    return None


def load_split(version_dir: str | Path, split: str) -> list[dict]:
    if split not in SPLITS:
        raise BadInputError(f"Unknown split {split!r}.", f"Use one of: {', '.join(SPLITS)}.")
    path = Path(version_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise BadInputError(f"{path} is missing.", "Pick a dataset saved by the Data tab or `python -m core.data`.")
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "dataset"


def dataset_card(name: str, metadata: dict, report: dict) -> str:
    counts = metadata["counts"]
    sources = "\n".join(f"- `{source}`: {count:,} conversations" for source, count in report["sources"].items())
    return f"""# {name}

Prepared with Chatsmith's Data stage on {metadata['created']} (content hash `{metadata['hash']}`).

- **train**: {counts['train']:,} conversations (`train.jsonl`)
- **validation**: {counts['validation']:,} conversations (`validation.jsonl`)

## Sources
{sources}

## Format
One JSON object per line: `{{"id": content hash, "source": name, "messages": [{{"role": ..., "content": ...}}]}}`,
TRL's conversational format, so `SFTTrainer` takes it directly:

```python
from datasets import load_dataset
dataset = load_dataset("json", data_files={{"train": "train.jsonl", "validation": "validation.jsonl"}})
```

## Report
{report_md.to_markdown(report)}
The settings that produced this dataset are in `dataset.json`; the full report in `report.json`.
"""


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
