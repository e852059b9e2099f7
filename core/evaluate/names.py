"""The names people gave the contenders, for the page: "kestrel · adapter (run 2026-11-30 21:23)", not
"run/20261130-212326-default-kestrel-d6145c44958a".

Contract: `display_names(workspace, keys)` maps every key to a readable name, and no two keys to the same
one: where two names would read alike, the distinguishing part is added (a GGUF's run time, then the key
itself). Keys stay what the battles table, the API and the vote records hold; only the page shows names.
A key this module cannot read (a model since deleted, an unknown kind) is named from the key alone, and a
name never raises.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import yaml

from core.models import DEFAULT_MODEL
from core.workspace import Workspace

DOCS_MARK = "+docs:"  # as core.documents.grounding spells it (not imported: that pulls in the retriever)
DEFAULT_NAME = f"Default model ({DEFAULT_MODEL})"
AUTO_RUN = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})\d{2}-")  # the Train tab's "time-model-dataset"
VERSION_HASH = re.compile(r"-[0-9a-f]{12}$")  # a saved dataset version's content hash
QUANT = re.compile(r"-((?:F|BF|Q)\d[A-Z0-9_]*)$", re.IGNORECASE)


def display_names(workspace: Workspace, keys: Iterable[str]) -> dict[str, str]:
    """Each key's readable name, unique among `keys`."""
    keys = list(dict.fromkeys(keys))
    parts = {key: _parts(workspace, key) for key in keys}
    names = {key: name for key, (name, _) in parts.items()}
    clashing = Counter(names.values())
    names = {key: f"{name} {parts[key][1]}".rstrip() if clashing[name] > 1 else name for key, name in names.items()}
    clashing = Counter(names.values())
    return {key: f"{name} [{key}]" if clashing[name] > 1 else name for key, name in names.items()}


def choices(workspace: Workspace, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Gradio (label, value) pairs: the name shown, the key kept."""
    names = display_names(workspace, keys)
    return [(name, key) for key, name in names.items()]


def _parts(workspace: Workspace, key: str) -> tuple[str, str]:
    """(name, the part that tells it apart from a namesake)."""
    base, mark, collection = key.partition(DOCS_MARK)
    if mark:
        name, detail = _parts(workspace, base)
        return f"{name} + documents “{collection}”", detail
    kind, _, rest = key.partition("/")
    if key == "default":
        return DEFAULT_NAME, "· GGUF"
    if key == "default-transformers":
        return f"{DEFAULT_NAME} · transformers", ""
    if kind == "base" and rest:
        return f"{rest} · base model", ""
    if kind == "hub" and rest:
        return f"{rest} · Hub model", ""
    if kind == "run" and rest:
        subject, when, method = _run_facts(workspace, rest)
        adapter = "adapter" if method == "sft" else f"{method.upper()} adapter"
        return f"{subject} · {adapter} ({when})" if when else f"{subject} · {adapter}", ""
    if kind == "gguf" and rest:
        return _gguf_parts(workspace, rest)
    return key, ""


def _gguf_parts(workspace: Workspace, relative: str) -> tuple[str, str]:
    """An exported GGUF, `<run>/gguf/<name>-<QUANT>.gguf`: named after its run's data and its quantisation."""
    path = Path(relative)
    quant = QUANT.search(path.stem)
    kind = f"{quant.group(1).upper()} GGUF" if quant else "GGUF"
    run = path.parts[0] if len(path.parts) > 1 else ""
    if not run:
        return f"{path.stem} · GGUF", ""
    subject, when, _ = _run_facts(workspace, run)
    return f"{subject} · {kind}", f"({when})" if when else f"({run})"


def _run_facts(workspace: Workspace, run: str) -> tuple[str, str, str]:
    """(what the run learnt from, "run <date time>", its method) from its folder, else from its name."""
    config = workspace.runs / run / "config.yaml"
    try:
        values = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        stamp = config.stat().st_mtime
    except (OSError, yaml.YAMLError):
        values, stamp = {}, None
    values = values if isinstance(values, dict) else {}
    dataset = VERSION_HASH.sub("", Path(str(values.get("dataset") or "")).name)
    auto = AUTO_RUN.match(run)
    subject = dataset if dataset and dataset.lower() != "none" else run
    if auto:
        year, month, day, hour, minute = auto.groups()
        when = f"run {year}-{month}-{day} {hour}:{minute}"
        if not dataset:  # a run folder gone: its name still says "time-model-dataset"
            subject = VERSION_HASH.sub("", run[auto.end():].partition("-")[2]) or run
    elif stamp is not None:
        when = time.strftime("run %Y-%m-%d %H:%M", time.localtime(stamp))
    else:
        when = ""
    return subject, when, str(values.get("method") or "sft").lower()
