"""4-bit on a CPU: memory saved against speed lost, on the default model, in one run.

    python bench/qlora_cpu_bench.py [--steps 6] [--reps 2] [--new-tokens 32]

The figures behind the Train tab's rule for 4-bit QLoRA on a CPU. Four arms, each in its own process
(so its peak RSS is its own), alternating over `--reps` repetitions because this machine is shared:

* train-lora:  the CPU preset's run through `core.train.recipe.train`, fp32 base, for `--steps` steps;
* train-qlora: the same run with `load_in_4bit=True` (bitsandbytes NF4 on the CPU, fp32 compute);
* chat-fp32 / chat-nf4: the base loaded for chat both ways, greedy decoding of `--new-tokens` tokens.

It prints the medians (real tokens/s of the steps after the first, decode tokens/s, peak RSS) and the
ratios 4-bit ÷ full precision.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ARMS = ("train-lora", "train-qlora", "chat-fp32", "chat-nf4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--arm", choices=ARMS, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print("RESULT " + json.dumps(run_arm(args)), flush=True)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench.train_bench import prepare_samples, resolve_model

    with tempfile.TemporaryDirectory(prefix="qlora-cpu-bench-") as scratch:
        workspace = Path(scratch) / "ws"
        version = prepare_samples(workspace)
        resolve_model("default", workspace)  # materialised once, shared by every child
        results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        for rep in range(args.reps):
            for arm in ARMS if rep % 2 == 0 else tuple(reversed(ARMS)):
                result = run_child(arm, args, workspace, version)
                results[arm].append(result)
                print(f"rep {rep + 1} {arm:12s}: " + " · ".join(f"{k} {v:,.1f}" for k, v in result.items()), flush=True)
        report(results)


def run_child(arm: str, args: argparse.Namespace, workspace: Path, version: Path) -> dict:
    command = [sys.executable, __file__, "--arm", arm, "--steps", str(args.steps), "--new-tokens",
               str(args.new_tokens), "--workspace", str(workspace), "--version", str(version)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if done.returncode or line is None:
        sys.exit(f"{arm} arm failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def run_arm(args: argparse.Namespace) -> dict:
    return (train_arm if args.arm.startswith("train") else chat_arm)(args)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_arm(args: argparse.Namespace) -> dict:
    """The CPU preset's recipe for a few steps; tokens/s of the steps after the warm-up step."""
    from core.train import recipe
    from core.train.settings import CPU_PRESET, preset_settings
    from core.workspace import Workspace

    settings = preset_settings(CPU_PRESET, dataset=args.version, max_steps=args.steps, eval_steps=0, save_steps=0,
                               logging_steps=1, load_in_4bit=args.arm == "train-qlora")
    events: list[dict] = []
    reporter = type("Collect", (), {"log": lambda *a: None, "event": lambda self, **e: events.append(e),
                                    "progress": lambda *a, **k: None, "should_stop": lambda *a: False})()
    recipe.train(settings, Path(tempfile.mkdtemp(prefix="run-")), Workspace(Path(args.workspace)), reporter,
                 max_steps_override=args.steps)
    speeds = [event["tokens_per_s"] for event in events if "tokens_per_s" in event and event["step"] > 1]
    return {"train_tokens_per_s": statistics.median(speeds), "peak_rss_mb": peak_rss_mb()}


def chat_arm(args: argparse.Namespace) -> dict:
    """Greedy decoding from the base loaded in fp32 or NF4, as Chat would load it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from core import models
    from core.workspace import Workspace

    folder = models.resolve("default", Workspace(Path(args.workspace)))
    quantization = None
    if args.arm == "chat-nf4":
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, quantization_config=quantization,
                                                 device_map={"": "cpu"} if quantization else None).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me about the sea."}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        model.generate(**ids, max_new_tokens=2, do_sample=False)  # warm-up
        started = time.perf_counter()
        out = model.generate(**ids, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
        seconds = time.perf_counter() - started
    new = out.shape[1] - ids["input_ids"].shape[1]
    return {"decode_tokens_per_s": new / seconds, "peak_rss_mb": peak_rss_mb()}


def report(results: dict[str, list[dict]]) -> None:
    med = {arm: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for arm, runs in results.items()}
    reps = len(results[ARMS[0]])
    print(f"\nmedians over {reps} repetitions (default model, this CPU)")
    print(f"{'arm':12s} {'tokens/s':>9s} {'peak RSS MB':>12s}")
    for arm in ARMS:
        speed = med[arm].get("train_tokens_per_s", med[arm].get("decode_tokens_per_s"))
        print(f"{arm:12s} {speed:9.1f} {med[arm]['peak_rss_mb']:12.0f}")
    lora, qlora, fp32, nf4 = (med[arm] for arm in ARMS)
    print(f"\ntraining: 4-bit runs at {qlora['train_tokens_per_s'] / lora['train_tokens_per_s']:.2f}× the speed, "
          f"peak RSS {qlora['peak_rss_mb'] / lora['peak_rss_mb']:.2f}× "
          f"({lora['peak_rss_mb'] - qlora['peak_rss_mb']:,.0f} MB saved)")
    print(f"chat: 4-bit decodes at {nf4['decode_tokens_per_s'] / fp32['decode_tokens_per_s']:.2f}× the speed, "
          f"peak RSS {nf4['peak_rss_mb'] / fp32['peak_rss_mb']:.2f}× ({fp32['peak_rss_mb'] - nf4['peak_rss_mb']:,.0f} MB saved)")


if __name__ == "__main__":
    main()
