"""A run's `config.yaml` that explains itself, and `key=value` overrides from the command line.

Contract: `config_yaml(settings, command)` is the YAML of `settings` with each knob's one-line reason
(its field docstring in `TrainSettings`) as a comment above it, which `yaml.safe_load` ignores, so the
file reads back to the same settings. `with_overrides(settings, ["learning_rate=1e-4", ...])` returns
the settings with each value parsed as its field's type; an unknown key, a malformed pair or a value of
the wrong type raises `BadInputError` naming it.
"""

from __future__ import annotations

import ast
import functools
import inspect
from dataclasses import fields
from typing import Any

import yaml

from core.errors import BadInputError
from core.train import settings as settings_module
from core.train.settings import TrainSettings

TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@functools.cache
def field_notes() -> dict[str, str]:
    """Each `TrainSettings` field's docstring on one line. Python keeps no attribute docstrings at run
    time, so they are read from the class's source, the one place they are written."""
    source = inspect.getsource(settings_module)
    body = next(node for node in ast.parse(source).body
                if isinstance(node, ast.ClassDef) and node.name == TrainSettings.__name__).body
    notes = {}
    for field, doc in zip(body, body[1:]):
        if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
            notes[field.target.id] = " ".join(str(doc.value.value).split())
    return notes


def config_yaml(settings: TrainSettings, command: str) -> str:
    """The settings as YAML, each key under its reason; `command` is how to repeat the run."""
    notes = field_notes()
    lines = [f"# Repeat this run without the UI:  {command}",
             "# Change a knob here, or on the command line after the file: learning_rate=1e-4 max_steps=50", ""]
    for key, value in settings.to_dict().items():
        if key in notes:
            lines.append(f"# {notes[key]}")
        lines.append(yaml.safe_dump({key: value}, allow_unicode=True, width=float("inf")).rstrip("\n"))
    return "\n".join(lines) + "\n"


def with_overrides(settings: TrainSettings, pairs: list[str]) -> TrainSettings:
    """`settings` with each `key=value` applied, typed like the field it names."""
    defaults = {field.name: field.default for field in fields(TrainSettings)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sign, text = pair.partition("=")
        key = key.strip()
        if not sign or not key:
            raise BadInputError(f"'{pair}' is not a key=value override.", "Write it like learning_rate=1e-4.")
        if key not in defaults:
            raise BadInputError(f"Unknown training setting '{key}' in '{pair}'.",
                                f"Known settings: {', '.join(defaults)}.")
        changes[key] = _typed(key, text.strip(), type(defaults[key]))
    return settings.with_changes(**changes)


def _typed(key: str, text: str, kind: type) -> Any:
    if kind is bool:
        if text.lower() not in TRUE + FALSE:
            raise BadInputError(f"{key}={text}: {key} is true or false.")
        return text.lower() in TRUE
    if kind in (int, float):
        try:
            value = float(text)
        except ValueError:
            raise BadInputError(f"{key}={text}: {key} is a number.") from None
        if kind is int and not value.is_integer():
            raise BadInputError(f"{key}={text}: {key} is a whole number.")
        return kind(value)
    return text
