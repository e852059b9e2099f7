"""Every `llama_cpp.Llama` the app opens comes from `open_llama`, which keeps llama.cpp off its AMX path.

llama.cpp compiled on a CPU with Intel AMX (Sapphire Rapids and later Xeons; a source build of
llama-cpp-python compiles for the CPU it is built on) moves quantised weights into "extra" AMX buffers
at load time. In the llama-cpp-python this app pins, the AMX matrix product then crashes the whole process
with a general protection fault at the first token of a Q8_0 or Q4_1 GGUF (the default model included),
on the instruction that loads its tile configuration (`ldtilecfg`, in `ggml_backend_amx_mul_mat`). AMX
itself works on that machine: a valid tile configuration loads there.

Where AMX is compiled in, the weights therefore stay in the file's own layout (llama.cpp's
`use_extra_bufts` off, what `llama-server --no-repack` does) and decoding takes the AVX-512 path. That
also gives up llama.cpp's repacking for this CPU, which it does for Q4_0, Q4_K and IQ4_NL (about 9 %
of Q4_0 decode on the machine that crashed, measured with a build without AMX; nothing for Q8_0 and
Q4_1, which it does not repack); the model parameters have no switch that skips only AMX. Elsewhere
nothing changes.

`Llama(...)` takes no argument for `use_extra_bufts`: it builds its model parameters from
`llama_model_default_params()`, so that function is swapped for the length of one load, under a lock.

A file llama.cpp refuses is then said in words: `CorruptFileError` when it is damaged, else
`CapabilityError`. The file is examined only after llama.cpp has refused it: llama.cpp checks that every
tensor lies within the file as it loads (truncated, emptied or overwritten files all fail cleanly), while
gguf's Python reader, the examination, builds every metadata entry first (3-4 s of CPU for the default
model's 49k-token vocabulary, before each load of 0.2 s).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from core.errors import CapabilityError

_DEFAULTS = threading.Lock()


@functools.cache
def amx_compiled_in() -> bool:
    """Whether this llama.cpp build has its AMX matrix path (llama.cpp says so in its system info)."""
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def open_llama(path: Path | str, **settings):
    """`llama_cpp.Llama(model_path=path, **settings)`, with the AMX buffers off where they are built in, and a
    refused file explained."""
    try:
        return _open(path, **settings)
    except (ValueError, RuntimeError) as error:  # llama-cpp-python's "Failed to load model from file: …"
        from core.models import verify_gguf

        verify_gguf(Path(path))  # raises CorruptFileError, saying what is wrong, for a damaged file
        raise CapabilityError(
            f"llama.cpp could not load {Path(path).name}, although the file is whole ({error}).",
            "Its architecture or quantisation may be newer than this llama.cpp, or the memory for its context "
            "may be missing: install a newer llama.cpp for Python, or export the model again with this app.") from error


def _open(path: Path | str, **settings):
    from llama_cpp import Llama

    if not amx_compiled_in():
        return Llama(model_path=str(path), **settings)
    import llama_cpp.llama_cpp as library

    with _DEFAULTS:
        defaults = library.llama_model_default_params

        def without_extra_buffers():
            params = defaults()
            params.use_extra_bufts = False
            return params

        library.llama_model_default_params = without_extra_buffers
        try:
            return Llama(model_path=str(path), **settings)
        finally:
            library.llama_model_default_params = defaults
