"""Training speed: the app's path against a plain TRL SFTTrainer with default collation, in one run.

    python bench/train_bench.py [--model default] [--rows 64] [--reps 3] [--version DIR]
    python bench/train_bench.py --quick      # a few minutes: 16 conversations, one repetition, less precise
    python bench/train_bench.py --profile    # where the app's training time goes, by kind of operation

Both arms train the same model (the default model) with the same LoRA recipe on the same conversations
(the shipped samples, prepared by the Data stage) for one epoch, so they see the same real (non-pad)
tokens and the same assistant-token masks. Only batching differs:

* app:      the CPU preset's path: padding-free batches attended per conversation, the LM head scored on
            trained tokens only (`core.train.speed`), gradient checkpointing off, each step's 8
            conversations in two micro-batches of 4;
* baseline: TRL's defaults: random padded batches of 8, gradient checkpointing on (fp32 on a CPU).

Each arm runs in its own process (so its peak RSS is its own), alternating over `--reps` repetitions
because this machine is shared; medians are printed: real tokens/s and their ratio, peak RSS and its
ratio, padding waste (processed ÷ real tokens) and the eval loss of both on held-out conversations.
It also prints each arm's model FLOPs utilisation: the epoch's model FLOPs, counted from the model's shapes
and the conversations' lengths, over the seconds it took, over this machine's fp32 matmul peak measured in
the same run before and after the arms (`bench/_flops.py` holds the formula and prints nothing else).
Goals: ≥ 2.0× tokens/s, MFU ≥ 60 % for the app, RSS ≤ 1.0×, waste ≤ 1.10, eval-loss ratio ≤ 1.01.

`--profile` runs the app's arm once under torch's profiler instead, and prints the share of the training
loop's wall time each kind of work takes: the matrix products with the model's frozen weights and the LM
head (the work MFU counts, near the peak), the rank-r LoRA products, attention, the optimizer, every other
ATen operation (element-wise: norms, rotary embeddings, activations, LoRA's scaling and sums, the
log-softmax over the vocabulary), and what runs outside ATen (Python, the autograd engine, data). The
profiler slows small operations, so the shares are the figure to read, not the seconds.
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
from bench._flops import lora_training_flops, matmul_peak_gflops  # noqa: E402
BATCH = 8  # conversations per optimizer step, in both arms
SAMPLES = sorted(str(p) for p in (ROOT / "assets" / "samples").glob("*") if p.suffix in (".json", ".jsonl", ".csv"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--rows", type=int, help="training conversations per arm, one epoch (default 64; 16 quick)")
    parser.add_argument("--eval-rows", type=int, help="held-out conversations (default 16; 4 quick)")
    parser.add_argument("--reps", type=int, help="alternating repetitions (default 3; 1 quick)")
    parser.add_argument("--quick", action="store_true",
                        help="finish in a few minutes on a busy 2-core box: fewer rows, one repetition, less precise")
    parser.add_argument("--version", help="a prepared dataset version (default: prepare the shipped samples)")
    parser.add_argument("--profile", action="store_true",
                        help="run the app's arm once under torch's profiler: where its training time goes")
    parser.add_argument("--arm", choices=("app", "baseline"), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print("RESULT " + json.dumps(run_arm(args)), flush=True)
        return
    for key, full, quick in (("rows", 64, 16), ("eval_rows", 16, 4), ("reps", 3, 1)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if args.quick:
        print(f"quick mode: {args.rows} conversations, {args.reps} repetition(s). Less precise than the full run: "
              "a single pair of arms on a shared box can stray far from the median of several, so take "
              "the ratio as a rough sign only.", flush=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="train-bench-") as scratch:
        workspace = Path(scratch) / "ws"
        version = Path(args.version) if args.version else prepare_samples(workspace)
        subset = make_subset(version, Path(scratch) / "subset", args.rows, args.eval_rows)
        model = str(resolve_model(args.model, workspace))  # materialised once, shared by every child
        flops, config = epoch_flops(model, subset)
        if args.profile:
            return print_profile(run_child("app", model, subset, workspace, extra=["--profile"]))
        peaks = [matmul_peak_gflops(config)]
        print(f"fp32 matmul peak before the arms: {peaks[0]:.1f} GFLOP/s · model FLOPs of the epoch "
              f"{flops / 1e12:.2f} TFLOP", flush=True)
        results = {"app": [], "baseline": []}
        for rep in range(args.reps):
            for arm in ("baseline", "app") if rep % 2 else ("app", "baseline"):
                result = run_child(arm, model, subset, workspace)
                result["gflops_per_s"] = flops / result["seconds"] / 1e9
                results[arm].append(result)
                print(f"rep {rep + 1} {arm:8s}: {result['tokens_per_s']:7.1f} real tokens/s · "
                      f"{result['gflops_per_s']:6.1f} model GFLOP/s · peak RSS {result['peak_rss_mb']:6.0f} MB · "
                      f"waste {result['waste']:.3f} · eval loss {result['eval_loss']:.4f}", flush=True)
        peaks.append(matmul_peak_gflops(config))
        print(f"fp32 matmul peak after the arms: {peaks[1]:.1f} GFLOP/s", flush=True)
        report(results, max(peaks), args.quick)


def prepare_samples(workspace: Path) -> Path:
    from core.data import PrepareOptions, Source, prepare, save_version
    from core.workspace import Workspace

    prepared = prepare([Source(path) for path in SAMPLES], PrepareOptions(model=""))  # estimated lengths suffice
    return save_version(Workspace(workspace).ensure(), prepared, "samples")


def resolve_model(reference: str, workspace: Path) -> Path:
    from core import models
    from core.workspace import Workspace

    return models.resolve(reference, Workspace(workspace).ensure())


def make_subset(version: Path, target: Path, rows: int, eval_rows: int) -> Path:
    """The first `rows` training and `eval_rows` validation conversations, as a version folder."""
    from core.train.data import read_jsonl

    target.mkdir(parents=True)
    train, validation = read_jsonl(version / "train.jsonl"), read_jsonl(version / "validation.jsonl")
    validation = (validation or train[rows:])[:eval_rows]
    (target / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train[:rows]), encoding="utf-8")
    (target / "heldout.jsonl").write_text("".join(json.dumps(r) + "\n" for r in validation), encoding="utf-8")
    return target


def run_child(arm: str, model: str, subset: Path, workspace: Path, script: str = __file__,
              extra: list[str] = ()) -> dict:
    command = [sys.executable, script, "--arm", arm, "--model", model, "--version", str(subset),
               "--workspace", str(workspace), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if done.returncode or line is None:
        sys.exit(f"{arm} arm failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def bench_settings(model: str, version: str):
    from core.train.settings import CPU_PRESET, PRESETS, TrainSettings

    # One epoch, nothing saved mid-way and no eval during training: only the training loop is timed. Both arms
    # take 8 conversations an optimizer step; the app splits them into micro-batches as its CPU preset does.
    micro = {key: PRESETS[CPU_PRESET][key] for key in ("batch_size", "grad_accum")}
    assert micro["batch_size"] * micro["grad_accum"] == BATCH
    return TrainSettings(model=model, dataset=version, epochs=1.0, **micro, learning_rate=1e-3, lora_rank=16,
                         lora_alpha=32, lora_dropout=0.0, max_length=512, eval_share=0.0, eval_steps=0,
                         save_steps=0, logging_steps=1000, warmup_ratio=0.0, seed=7)


def run_arm(args: argparse.Namespace) -> dict:
    from core.workspace import Workspace

    workspace = Workspace(Path(args.workspace)).ensure()
    settings = bench_settings(args.model, args.version)
    if args.profile:
        return profile_app_arm(settings, workspace)
    model, tokens, seconds, processed, peak_rss = (app_arm if args.arm == "app" else baseline_arm)(settings, workspace)
    loss = eval_loss(model, settings, workspace)
    return {"tokens_per_s": tokens / seconds, "real_tokens": tokens, "seconds": seconds,
            "waste": processed / tokens, "eval_loss": loss, "peak_rss_mb": peak_rss}


def peak_rss_mb() -> float:
    """Peak RSS of this process so far: read as training ends, before the eval loads anything."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def app_arm(settings, workspace):
    """The app's own path: the run's recipe (`core.train.recipe.train` for SFT), exactly as a run from the tab."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from core import models
    from core.train.job import recipe_for

    run_dir = Path(tempfile.mkdtemp(prefix="app-arm-"))
    quiet = type("Quiet", (), {"log": lambda *a: None, "event": lambda *a, **k: None,
                               "progress": lambda *a, **k: None, "should_stop": lambda *a: False})()
    summary = recipe_for(settings)(settings, run_dir, workspace, quiet)
    peak = peak_rss_mb()
    base = AutoModelForCausalLM.from_pretrained(models.resolve(settings.model, workspace))
    model = PeftModel.from_pretrained(base, run_dir / "adapter")
    return model, summary["real_tokens"], summary["duration_s"], summary["processed_tokens"], peak


def baseline_arm(settings, workspace):
    """A plain SFTTrainer: same rows, masks and LoRA; TRL's default collation and checkpointing."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from core import models
    from core.train import data
    from core.train.recipe import lora_config

    model_dir = models.resolve(settings.model, workspace)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    records, _ = data.load_splits(settings.dataset, 0.0, settings.seed)
    rows, stats = data.tokenize(tokenizer, records, settings.max_length, True)
    config = SFTConfig(output_dir=tempfile.mkdtemp(prefix="baseline-"), num_train_epochs=1, per_device_train_batch_size=BATCH,
                       learning_rate=settings.learning_rate, lr_scheduler_type=settings.scheduler, seed=settings.seed,
                       max_length=settings.max_length, use_cpu=True, bf16=False, save_strategy="no",
                       report_to="none", disable_tqdm=True, logging_steps=1000)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=config,
                         train_dataset=data.to_dataset(rows), processing_class=tokenizer,
                         peft_config=lora_config(settings))
    collate, processed = trainer.data_collator, [0]

    def counting(examples):
        batch = collate(examples)
        processed[0] += batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return trainer.model, stats.tokens, seconds, processed[0], peak_rss_mb()


def eval_loss(model, settings, workspace) -> float:
    """Mean loss per trained token on the held-out conversations, one at a time (no padding at all)."""
    import torch
    from transformers import AutoTokenizer

    from core import models
    from core.train import data

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(settings.model, workspace))
    records = data.read_jsonl(Path(settings.dataset) / "heldout.jsonl")
    rows, _ = data.tokenize(tokenizer, records, settings.max_length, True)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            ids = torch.tensor([row["input_ids"]])
            labels = torch.tensor([[t if m else -100 for t, m in zip(row["input_ids"], row["assistant_masks"])]])
            trained = int((labels[0, 1:] != -100).sum())
            total += model(input_ids=ids, labels=labels).loss.item() * trained
            count += trained
    return total / count


def epoch_flops(model: str, subset: Path) -> tuple[float, object]:
    """Model FLOPs of one epoch over the subset's training conversations, tokenised as both arms do."""
    from transformers import AutoConfig, AutoTokenizer

    from core.train import data

    config = AutoConfig.from_pretrained(model)
    records = data.read_jsonl(subset / "train.jsonl")
    settings = bench_settings(model, str(subset))
    rows, _ = data.tokenize(AutoTokenizer.from_pretrained(model), records, settings.max_length, True)
    # a token is scored when the next one is trained: the label shift leaves the last position unscored
    lengths = [(len(row["input_ids"]), sum(row["assistant_masks"][1:])) for row in rows]
    return lora_training_flops(config, lengths, settings.lora_rank), config


def profile_app_arm(settings, workspace) -> dict:
    """Seconds of the app's training loop by kind of work (see the module's docstring), under torch's profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from core.train import recipe

    timed = {}
    fit = recipe.fit

    def profiled_fit(*args, **kwargs):  # the training loop only: not loading, tokenizing or saving
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
            started = time.perf_counter()
            fit(*args, **kwargs)
            timed["wall"] = time.perf_counter() - started
        timed["events"] = profiler.key_averages(group_by_input_shape=True)

    recipe.fit = profiled_fit  # the recipe calls it by its module-level name
    try:
        app_arm(settings, workspace)
    finally:
        recipe.fit = fit
    kinds = dict.fromkeys(PROFILE_KINDS, 0.0)
    for event in timed["events"]:
        if event.key.startswith("aten::"):
            kinds[_kind(event.key, event.input_shapes, settings.lora_rank)] += event.self_cpu_time_total / 1e6
    kinds["outside ATen: Python, the autograd engine, data"] = timed["wall"] - sum(kinds.values())
    return {"wall": timed["wall"], "kinds": kinds, "threads": torch.get_num_threads()}


PROFILE_KINDS = ("matrix products with the frozen weights and the LM head", "LoRA's rank-r matrix products",
                 "attention (SDPA)", "optimizer (AdamW)", "other ATen operations (element-wise)",
                 "outside ATen: Python, the autograd engine, data")
MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def _kind(name: str, shapes: list, rank: int) -> str:
    if name in MATMULS:
        return PROFILE_KINDS[1] if any(rank in shape for shape in shapes if shape) else PROFILE_KINDS[0]
    if "scaled_dot_product" in name:
        return PROFILE_KINDS[2]
    if "adam" in name or "_foreach" in name:
        return PROFILE_KINDS[3]
    return PROFILE_KINDS[4]


def print_profile(result: dict) -> None:
    print(f"\nwhere the app's training loop spends its time ({result['wall']:.1f} s under the profiler, "
          f"{result['threads']} threads):")
    for kind, seconds in result["kinds"].items():
        print(f"  {seconds / result['wall']:6.1%}  {seconds:7.2f} s  {kind}")


def report(results: dict, peak_gflops: float, quick: bool = False) -> None:
    med = {arm: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for arm, runs in results.items()}
    app, base = med["app"], med["baseline"]
    print("\nmedians over", len(results["app"]), "repetitions")
    print(f"{'':10s} {'tokens/s':>9s} {'peak RSS MB':>12s} {'waste':>6s} {'eval loss':>10s}")
    for arm in ("baseline", "app"):
        m = med[arm]
        print(f"{arm:10s} {m['tokens_per_s']:9.1f} {m['peak_rss_mb']:12.0f} {m['waste']:6.3f} {m['eval_loss']:10.4f}")
    pairs = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(results["app"], results["baseline"])]
    print("pairs (app ÷ baseline, in run order): " + ", ".join(f"{p:.2f}×" for p in pairs)
          + f" · spread {min(pairs):.2f}–{max(pairs):.2f}×")
    print(f"MFU against the best fp32 matmul rate measured in this run ({peak_gflops:.1f} GFLOP/s): "
          f"app {app['gflops_per_s'] / peak_gflops:.1%} (goal ≥ 60 %), baseline {base['gflops_per_s'] / peak_gflops:.1%}"
          " · each pair: " + ", ".join(f"{r['gflops_per_s'] / peak_gflops:.0%}" for r in results["app"]))
    print(f"\nspeed-up {app['tokens_per_s'] / base['tokens_per_s']:.2f}× (goal ≥ 2.0) · "
          f"RSS {app['peak_rss_mb'] / base['peak_rss_mb']:.2f}× (goal ≤ 1.0) · "
          f"padding waste {app['waste']:.3f} vs {base['waste']:.3f} (goal ≤ 1.10) · "
          f"eval-loss ratio {app['eval_loss'] / base['eval_loss']:.4f} (goal ≤ 1.01) · "
          f"real tokens per arm {int(app['real_tokens'])}")
    if quick:
        print("(quick mode: one repetition of few rows; run without --quick for figures to compare or publish)")


if __name__ == "__main__":
    main()
