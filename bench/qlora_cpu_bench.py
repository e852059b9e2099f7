"""4-bit on a CPU: memory saved against speed lost, on the default model, in one run.

    python bench/qlora_cpu_bench.py [--steps 6] [--reps 2] [--new-tokens 32] [--model default]

The figures behind the Train tab's rule for 4-bit QLoRA on a CPU. Four arms, each in its own process
(so its peak RSS is its own), alternating over `--reps` repetitions because this machine is shared:

* train-lora:  the CPU preset's run through `core.train.recipe.train`, fp32 base, for `--steps` steps;
* train-qlora: the same run with `load_in_4bit=True` (bitsandbytes NF4 on the CPU, fp32 compute);
* chat-fp32 / chat-nf4: the base loaded for chat both ways (load time, RSS once loaded), then greedy
  decoding of `--new-tokens` tokens.

It prints the medians (real tokens/s of the steps after the first and tokens per CPU-second of this
process, which other work on a shared box disturbs much less; peak RSS; load time, resident RSS and
decode speed) and the ratios 4-bit ÷ full precision.
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
    args = parse_args()
    if args.arm:  # a child: one arm, its figures as one JSON line
        print("RESULT " + json.dumps(run_arm(args)), flush=True)
    else:
        compare(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--model", default="default", help="the base model: default, a local folder or a Hub id")
    for hidden in ("--arm", "--workspace", "--version"):  # set by the parent for its children
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    return parser.parse_args()


def compare(args: argparse.Namespace) -> None:
    """Every arm in its own process, alternating order each repetition, then the medians."""
    from bench.train_bench import prepare_samples, resolve_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="qlora-cpu-bench-") as scratch:
        workspace = Path(scratch) / "ws"
        version = prepare_samples(workspace)
        args.model = str(resolve_model(args.model, workspace))  # materialised once, shared by every child
        results: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        for rep in range(args.reps):
            for arm in ARMS if rep % 2 == 0 else tuple(reversed(ARMS)):
                results[arm].append(run_child(arm, args, workspace, version))
                print(f"rep {rep + 1} {arm:12s}: " + _figures(results[arm][-1]), flush=True)
        report(results, args.model)


def _figures(result: dict) -> str:
    return " · ".join(f"{key} {value:,.1f}" for key, value in result.items())


def run_child(arm: str, args: argparse.Namespace, workspace: Path, version: Path) -> dict:
    command = [sys.executable, __file__, "--arm", arm, "--steps", str(args.steps), "--new-tokens",
               str(args.new_tokens), "--workspace", str(workspace), "--version", str(version), "--model", args.model]
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

    settings = preset_settings(CPU_PRESET, model=args.model, dataset=args.version, max_steps=args.steps,
                               eval_steps=0, save_steps=0, logging_steps=1, load_in_4bit=args.arm == "train-qlora")
    clocks: list[tuple[float, float, float]] = []  # (wall, this process's CPU time, wall tokens/s) per step

    def event(self, **metrics) -> None:
        if "tokens_per_s" in metrics:
            clocks.append((time.perf_counter(), time.process_time(), metrics["tokens_per_s"]))

    reporter = type("Collect", (), {"log": lambda *a: None, "event": event, "progress": lambda *a, **k: None,
                                    "should_stop": lambda *a: False})()
    recipe.train(settings, Path(tempfile.mkdtemp(prefix="run-")), Workspace(Path(args.workspace)), reporter,
                 max_steps_override=args.steps)
    # After the warm-up step: wall tokens/s as the run saw it, and tokens per CPU-second, which other
    # processes on a shared box disturb much less.
    steps = list(zip(clocks, clocks[1:]))
    tokens = [(now[0] - before[0]) * now[2] for before, now in steps]
    cpu = sum(now[1] - before[1] for before, now in steps)
    return {"train_tokens_per_s": statistics.median(now[2] for _, now in steps),
            "train_tokens_per_cpu_s": sum(tokens) / cpu, "peak_rss_mb": peak_rss_mb()}


def chat_arm(args: argparse.Namespace) -> dict:
    """Greedy decoding from the base loaded in fp32 or NF4, as Chat would load it."""
    import gc

    import psutil
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core import models
    from core.workspace import Workspace

    folder = models.resolve(args.model, Workspace(Path(args.workspace)))
    quantized = {}
    if args.arm == "chat-nf4":
        quantized = dict(quantization_config=models.nf4_config(torch.float32), device_map={"": "cpu"})
    started, load_cpu_s = time.perf_counter(), time.process_time()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **quantized).eval()
    load_s, load_cpu_s = time.perf_counter() - started, time.process_time() - load_cpu_s
    gc.collect()
    resident_mb = psutil.Process().memory_info().rss / 2**20  # what the model holds while chatting
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me about the sea."}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        model.generate(**ids, max_new_tokens=2, do_sample=False)  # warm-up
        started, cpu = time.perf_counter(), time.process_time()
        out = model.generate(**ids, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    new = out.shape[1] - ids["input_ids"].shape[1]
    return {"decode_tokens_per_s": new / seconds, "decode_tokens_per_cpu_s": new / cpu, "load_s": load_s,
            "load_cpu_s": load_cpu_s, "resident_mb": resident_mb, "peak_rss_mb": peak_rss_mb()}


def report(results: dict[str, list[dict]], model: str) -> None:
    med = {arm: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for arm, runs in results.items()}
    print(f"\nmedians over {len(results[ARMS[0]])} repetitions ({Path(model).name}, this CPU)")
    for arm in ARMS:
        print(f"{arm:12s} {_figures(med[arm])}")
    lora, qlora, fp32, nf4 = (med[arm] for arm in ARMS)

    def ratio(new: dict, old: dict, key: str) -> str:
        return f"{new[key] / old[key]:.2f}×"

    print(f"\ntraining, 4-bit ÷ fp32: tokens/s {ratio(qlora, lora, 'train_tokens_per_s')}, tokens per CPU-second "
          f"{ratio(qlora, lora, 'train_tokens_per_cpu_s')}, peak RSS {ratio(qlora, lora, 'peak_rss_mb')} "
          f"({qlora['peak_rss_mb'] - lora['peak_rss_mb']:+,.0f} MB)")
    print(f"chat, 4-bit ÷ fp32: load time {ratio(nf4, fp32, 'load_s')} (CPU {ratio(nf4, fp32, 'load_cpu_s')}), "
          f"decode tokens/s {ratio(nf4, fp32, 'decode_tokens_per_s')} (per CPU-second "
          f"{ratio(nf4, fp32, 'decode_tokens_per_cpu_s')}), resident RSS {ratio(nf4, fp32, 'resident_mb')} "
          f"({nf4['resident_mb'] - fp32['resident_mb']:+,.0f} MB)")


if __name__ == "__main__":
    main()
