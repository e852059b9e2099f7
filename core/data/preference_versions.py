"""Saved preference dataset versions: immutable folders beside the conversation versions.

Contract: `save_preferences(workspace, prepared, name)` writes `datasets/{slug}-{hash12}/` atomically with
`train.jsonl` / `validation.jsonl` (pairs), `unpaired-train.jsonl` / `unpaired-validation.jsonl` (KTO rows),
`report.json`, `report.md`, `README.md` and `dataset.json` (whose `kind` is "preferences"); the same content
saved again returns the existing folder. `write_preference_files` writes the same into any folder (the
CLI's `--out`). `load_pairs` / `load_unpaired` read a split back; `is_preference_version` tells the two
kinds of version apart. The version's records carry their `origin`, so every pair says where it came from.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from core import atomic
from core.data.preferences import PreparedPreferences, to_markdown
from core.data.versions import content_hash, save_version
from core.errors import BadInputError
from core.workspace import Workspace

KIND = "preferences"
FILES = {"train": "train.jsonl", "validation": "validation.jsonl", "unpaired_train": "unpaired-train.jsonl",
         "unpaired_validation": "unpaired-validation.jsonl"}


def save_preferences(workspace: Workspace, prepared: PreparedPreferences, name: str) -> Path:
    if not prepared.records:
        raise BadInputError("There is nothing to save: no pair and no rated answer was kept.",
                            "Look at the drop reasons in the report.")
    return save_version(workspace, prepared, name, splits=tuple(FILES), write=write_preference_files)


def write_preference_files(folder: Path, prepared: PreparedPreferences, name: str, digest: str | None = None) -> Path:
    folder = Path(folder)
    digest = digest or content_hash(prepared, tuple(FILES))
    counts = {split: len(getattr(prepared, split)) for split in FILES}
    metadata = {"name": name, "hash": digest, "kind": KIND,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sources": prepared.report["sources"],
                "counts": counts, "options": prepared.options.public()}
    for split, file_name in FILES.items():
        atomic.write_text(folder / file_name, "".join(_line(r) for r in getattr(prepared, split)))
    atomic.write_json(folder / "report.json", prepared.report)
    atomic.write_text(folder / "report.md", f"# Preference data report: {name}\n\n" + to_markdown(prepared.report))
    atomic.write_text(folder / "README.md", _card(name, metadata, prepared.report))
    atomic.write_json(folder / "dataset.json", metadata)
    return folder


def is_preference_version(folder: str | Path) -> bool:
    try:
        return json.loads((Path(folder) / "dataset.json").read_text(encoding="utf-8")).get("kind") == KIND
    except (OSError, ValueError):
        return False


def load_pairs(folder: str | Path, split: str = "train") -> list[dict]:
    return _read(Path(folder), split)


def load_unpaired(folder: str | Path, split: str = "train") -> list[dict]:
    return _read(Path(folder), f"unpaired_{split}")


def _read(folder: Path, split: str) -> list[dict]:
    if not is_preference_version(folder):
        raise BadInputError(f"'{folder}' is not a preference dataset version.",
                            "Build one in the Data tab (Preference data) or with `python -m core.data preferences`.")
    path = folder / FILES[split]
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines() if path.is_file() else [], start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise BadInputError(f"{path.name} line {number} is not valid JSON.", "Rebuild the preference dataset.") from None
    return records


def _card(name: str, metadata: dict, report: dict) -> str:
    counts = metadata["counts"]
    return f"""# {name}

Preference data prepared with Chatsmith on {metadata['created']} (content hash `{metadata['hash']}`).

- **pairs**: {counts['train']:,} train (`train.jsonl`), {counts['validation']:,} validation (`validation.jsonl`)
- **unpaired answers**: {counts['unpaired_train']:,} train, {counts['unpaired_validation']:,} validation
  (`unpaired-*.jsonl`)

## Format
TRL's conversational preference format, so `DPOTrainer` and `KTOTrainer` take it directly. A pair is
`{{"prompt": [turns], "chosen": [assistant turn], "rejected": [assistant turn]}}`, an unpaired answer
`{{"prompt": [turns], "completion": [assistant turn], "label": true|false}}`. Every record also holds `id`,
`source` and `origin`: the file and line, the arena battle (id, models, rater) or the chat rating it came from.

## Report
{to_markdown(report)}"""


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
