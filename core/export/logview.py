"""An export job's log as a person reads it: the app's own lines, without the libraries' chatter.

A job's log holds everything its process printed: the app's lines ("Quantising to Q8_0 from F32…",
"Q8_0: agrees on all prompts…") and, mixed in, Python warnings with their source lines, llama.cpp's
per-tensor and loader lines from C, progress bars, and library log records such as bitsandbytes'
"Failed to load CPU gemm_4bit_forward from kernels-community". Those help whoever debugs a failure,
so the raw log stays available; `readable` keeps what a user should read.
"""

from __future__ import annotations

import re

NOISE = re.compile(
    r"^\S.*:\d+: \w*Warning: "                                     # a Python warning's first line
    r"|^(llama|llm|ggml|gguf|print_info|load|load_tensors|main|system_info|common)\w*: "  # llama.cpp, from C
    r"|^\[\s*\d+/\s*\d+\] "                                          # the quantiser's line per tensor
    r"|it/s\]|s/it\]|\d+%\|"                                          # progress bars
    r"|^(WARNING|INFO|DEBUG)[:\s]"                                    # library log records
    r"|Failed to load CPU gemm_4bit_forward"
)


def readable(raw: str, lines: int = 15) -> str:
    """The last `lines` lines of `raw` that a user should read."""
    kept, in_noise = [], False
    for line in raw.replace("\r", "\n").splitlines():
        if not line.strip():
            continue
        if NOISE.search(line) or (in_noise and line[:1].isspace()):
            in_noise = True  # a warning's indented source line, or a record's continuation, follows it
            continue
        in_noise = False
        kept.append(line)
    return "\n".join(kept[-lines:])
