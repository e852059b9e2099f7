"""What every tab shares: the app context, translated labels and capability gating."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio.i18n import I18nData

from core.devices import Capabilities, DeviceInfo, Gate, capabilities, detect
from core.errors import LockedError
from core.jobs import JobRunner
from core.masks import TRAINED
from core.workspace import Workspace
from tabs.messages import error_line, translated


TRAINED_COLOURS = {TRAINED: "#7fd17f", "chosen": "#7fd17f", "rejected": "#f4a261"}
"""One colour map for every highlight of trained tokens (the Data tab's template view, the Train tab's mask
sample): trained tokens green wherever they are shown, untrained ones (no label) plain; a preference pair's
chosen answer green and its rejected one orange."""


def t(key: str) -> I18nData:
    """A label translated in the browser (English or Simplified Chinese, by the browser's language)."""
    return I18nData(key)


@dataclass
class AppContext:
    """Built once per app; shared by all browser sessions (per-session state lives in `gr.State`)."""

    workspace: Workspace
    locked_reason: str = ""
    """Non-empty when the app is reachable from a network without auth: heavy features refuse."""
    demo: Any = None
    """The `gr.Blocks` being built, so tabs can register page-load events."""
    _device: DeviceInfo | None = field(default=None, repr=False)
    _device_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.locked_reason:  # models.resolve reads the lock from the workspace, wherever it is called from
            self.workspace = dataclasses.replace(self.workspace, locked_reason=self.locked_reason)
        self.jobs = JobRunner(self.workspace)

    def device(self) -> DeviceInfo:
        """Detected once (imports torch), on first need rather than at start-up."""
        with self._device_lock:
            if self._device is None:
                self._device = detect(self.workspace.root)
            return self._device

    def capabilities(self) -> Capabilities:
        return capabilities(self.device())

    def signing_key(self) -> bytes:
        """The workspace's secret for signed cookies (the arena's anonymous raters)."""
        from core.access import signing_key

        return signing_key(self.workspace.root)

    def warm_up(self) -> None:
        threading.Thread(target=self.device, daemon=True, name="detect-device").start()

    def require_unlocked(self, action: str) -> None:
        if self.locked_reason:
            raise LockedError(f"{action} is disabled: {self.locked_reason}",
                              "Restart with --auth USER:PASSWORD, or bind to 127.0.0.1.")


def gate_note(gate: Gate, locale: str = "en") -> str:
    """The text shown beside a control: the reason it is greyed out, or its caveat, in `locale`."""
    reason = translated(gate.reason, locale)
    if gate.ok:
        return f"ℹ️ {reason}" if reason else ""
    return f"🚫 {reason}"


def gated(gate: Gate, locale: str = "en") -> tuple[dict, str]:
    """Updates for a gated control and its note: greyed out with the reason, never hidden."""
    return gr.update(interactive=gate.ok), gate_note(gate, locale)


def refreshed(choices: list, current: Any, default: Any = None) -> dict:
    """A picker's update with fresh choices that keeps what the user picked while it still exists
    (for a multiselect, the picked values that still exist), else `default`.

    `current` is what the page held when the event was sent. While it still exists the update leaves the
    value alone rather than writing `current` back: a timer's tick sent before another handler (a page
    load pointing Chat at the guided first run's GGUF) set a newer value must not put the old one back."""
    values = [choice[1] if isinstance(choice, tuple) else choice for choice in choices]
    if isinstance(current, list):
        kept = [value for value in current if value in values]
        return gr.update(choices=choices) if kept == current else gr.update(choices=choices, value=kept)
    return gr.update(choices=choices) if current in values else gr.update(choices=choices, value=default)


def error_text(error: BaseException, locale: str = "en") -> str:
    """The `❌` line for an error, in the browser's language (`tabs.messages.locale_of`)."""
    return error_line(error, locale)


@dataclass(frozen=True)
class Focus:
    """The widget that names what a tab works on (a run, a model, contenders), and how to point it at
    something new with fresh choices. A tab's `build` returns one, or None; the guided first run uses them
    to follow its own dataset, run and model from tab to tab."""

    widget: Any
    point_at: Any
    """A function: value -> gr.update(choices=<fresh>, value=value)."""
