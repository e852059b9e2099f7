"""The error explainer: known failures of this stack, turned into a plain cause and a concrete fix.

`explain(error)` walks the error and its causes and returns the first `Explanation` whose rule matches,
or None. Rules match on exception type and on the stable parts of library messages (torch, accelerate,
transformers, huggingface_hub, bitsandbytes), because the libraries raise generic types. Our own
`ChatsmithError`s already speak plainly and are not rewritten.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass

from core import hub_errors


@dataclass(frozen=True)
class Explanation:
    cause: str
    fix: str

    def __str__(self) -> str:
        return f"{self.cause} Fix: {self.fix}"


@dataclass(frozen=True)
class _Rule:
    matches: Callable[[BaseException, str], bool]
    explanation: Explanation


def _contains(*needles: str) -> Callable[[BaseException, str], bool]:
    return lambda error, text: any(needle.lower() in text for needle in needles)


def _is_oom(error: BaseException, text: str) -> bool:
    return type(error).__name__ == "OutOfMemoryError" or "out of memory" in text


def _is_disk_full(error: BaseException, text: str) -> bool:
    return (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "no space left on device" in text


def _is_offline(error: BaseException, text: str) -> bool:
    from huggingface_hub.errors import LocalEntryNotFoundError

    return isinstance(error, LocalEntryNotFoundError) or hub_errors.unreachable(error) \
        or "cannot reach the hub" in text or "offline mode" in text


RULES = (
    _Rule(_is_oom, Explanation(
        "The model ran out of memory (GPU VRAM or RAM).",
        "Lower the batch size (raise gradient accumulation to keep the effective batch), shorten the maximum "
        "sequence length, turn on gradient checkpointing, or use 4-bit QLoRA on an NVIDIA GPU.")),
    _Rule(_contains("attempting to unscale fp16 gradients", "fp16 mixed precision requires",
                    "fp16 mixed precision with mps"), Explanation(
        "fp16 mixed precision failed on this device (Apple MPS and CPUs do not train reliably in fp16).",
        "Set precision to 'auto' or fp32 on a Mac or CPU; keep fp16 for NVIDIA GPUs without bf16.")),
    _Rule(_contains("bitsandbytes", "4-bit qlora needs", "load_in_4bit"), Explanation(
        "bitsandbytes could not run 4-bit QLoRA here; the app offers it on NVIDIA GPUs (CUDA), and Apple "
        "silicon has no bitsandbytes in the set-up.",
        "Untick 4-bit QLoRA and train plain LoRA, or train on a CUDA machine.")),
    _Rule(_contains("chat_template is not set", "chat template", "templatesyntaxerror", "templateerror"),
          Explanation(
        "The model's chat template is missing or broken, so conversations cannot be formatted.",
        "Use an instruct/chat model (its tokenizer_config.json or chat_template.jinja holds the template), "
        "or copy a template such as ChatML into the tokenizer before training.")),
    _Rule(_contains("trust_remote_code", "custom python code", "auto_map"), Explanation(
        "This model ships its own Python code, which the app does not run by default.",
        "Only if you trust its authors, tick 'Allow remote code'; otherwise pick a model supported natively.")),
    _Rule(_is_offline, Explanation(
        "The Hugging Face Hub cannot be reached and the model is not in the local cache.",
        "Connect to the internet once to download it, or pick a local folder or the default model.")),
    _Rule(_is_disk_full, Explanation(
        "The disk is full; the file being written was discarded and earlier files are intact.",
        "Free some space (old runs, checkpoints or exports) or move the workspace with --workspace.")),
)


def explain(error: BaseException) -> Explanation | None:
    """The first rule matching `error` or one of its causes, else None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{type(current).__name__}: {current}".lower()
        for rule in RULES:
            if rule.matches(current, text):
                return rule.explanation
        current = current.__cause__ or current.__context__
    return None
