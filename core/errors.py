"""Typed errors whose text is written for the person using the app.

Every error the app expects carries two parts: `message` says what went wrong and where, `hint` says
what to do about it. The UI shows `str(error)` as it is, so both must read as plain language. Anything
that is not a `ChatsmithError` is a bug and is shown with its type.
"""

from __future__ import annotations


class ChatsmithError(Exception):
    """Base class: an expected failure with a message and an optional hint for the user."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class BadInputError(ChatsmithError, ValueError):
    """A file, setting or request that the app cannot use as given."""


class CorruptFileError(ChatsmithError):
    """A model or data file that is truncated, empty or not what its name says."""


class UnsafeModelError(ChatsmithError):
    """A model that would run code on load: pickle-only weights or remote code."""


class ModelNotFoundError(ChatsmithError):
    """A model reference that is neither a local folder nor a reachable, cached Hub repository."""


class OfflineError(ChatsmithError):
    """Something that needs the network was asked for while offline."""


class CapabilityError(ChatsmithError):
    """A feature this machine cannot run (QLoRA without CUDA, bf16 on an old GPU, ...)."""


class JobBusyError(ChatsmithError):
    """Another heavy job holds the accelerator."""


class DiskFullError(ChatsmithError, OSError):
    """Not enough free space for a write; earlier files are untouched."""


class OutputExistsError(ChatsmithError, FileExistsError):
    """An output folder that exists and may not be replaced: the app did not make it."""


class LockedError(ChatsmithError):
    """A feature refused because the app is exposed to a network without authentication."""


def describe(error: BaseException) -> str:
    """The text the UI shows for any error: ours as written, known library failures explained
    (core/explain.py), anything else with its type."""
    if isinstance(error, ChatsmithError):
        return str(error)
    from core.explain import explain

    explanation = explain(error)
    return f"{explanation} (Details: {details(error)})" if explanation else f"{type(error).__name__}: {error}"


def details(error: BaseException) -> str:
    """A library error's own text with its type, cut to what a message line can hold."""
    return f"{type(error).__name__}: {error}"[:300]
