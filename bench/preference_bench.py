"""DPO speed: the app's path against a plain TRL DPOTrainer with its defaults, in one run.

    python bench/preference_bench.py [--model default] [--rows 24] [--reps 3] [--quick]

Both arms train the same LoRA on the same model with the same pairs for one epoch, 8 pairs an optimizer
step. The pairs come from the shipped samples (prepared by the Data stage): each conversation's own answer
is chosen, another conversation's answer rejected, so lengths vary as in real data.

* app:      `core.train.preference.train` as a `method: dpo` run from the CPU preset: the same random
            batches as TRL's, each step's 8 pairs in four micro-batches of 2 (4 sequences, as many as the
            preset's SFT micro-batch holds: a pair is two sequences), causal attention per row without a
            padding mask and the LM head scored on the answers only (`core.train.speed`), no gradient
            checkpointing;
* baseline: TRL's DPOTrainer defaults: random batches of 8 pairs, gradient checkpointing on (fp32 and
            `use_cpu` on a CPU, where TRL's bf16 default does not run).

Each arm runs in its own process (its peak RSS is its own), alternating over `--reps` because this
machine is shared; medians are printed: real (non-pad) tokens/s of chosen and rejected sequences and their
ratio, peak RSS and its ratio, and the held-out DPO loss of both adapters (the same pairs, scored one
sequence at a time against the base model). Tokens/s leave out each arm's first optimizer step: its first
forward passes take several times longer than later ones of the same size (allocations), which would
otherwise swamp a run this short. Goals: ≥ 1.5× tokens/s, RSS ≤ 1.0×, loss ratio within 1 %.
`--quick` is a smoke run: 16 pairs, one repetition.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.train_bench import app_arm, peak_rss_mb, prepare_samples, resolve_model, run_child  # noqa: E402

BATCH = 8  # pairs per optimizer step, in both arms
BETA = 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--rows", type=int, default=24, help="training pairs per arm (one epoch)")
    parser.add_argument("--eval-rows", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 16 pairs, one repetition")
    parser.add_argument("--arm", choices=("app", "baseline"), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--version", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.arm:
        print("RESULT " + json.dumps(run_arm(args)), flush=True)
        return
    if args.quick:
        args.rows, args.eval_rows, args.reps = 16, 8, 1
    with tempfile.TemporaryDirectory(prefix="preference-bench-") as scratch:
        workspace = Path(scratch) / "ws"
        version = make_pairs(prepare_samples(workspace), workspace, args.rows, args.eval_rows)
        model = str(resolve_model(args.model, workspace))
        results = {"app": [], "baseline": []}
        for rep in range(args.reps):
            for arm in ("baseline", "app") if rep % 2 else ("app", "baseline"):
                result = run_child(arm, model, version, workspace, __file__)
                results[arm].append(result)
                print(f"rep {rep + 1} {arm:8s}: {result['tokens_per_s']:7.1f} real tokens/s · peak RSS "
                      f"{result['peak_rss_mb']:6.0f} MB · waste {result['waste']:.3f} · held-out DPO loss "
                      f"{result['eval_loss']:.4f}", flush=True)
        report(results)


def make_pairs(samples: Path, workspace: Path, rows: int, eval_rows: int) -> Path:
    """A preference version: each single-turn sample's answer chosen, a random other one rejected."""
    from core.data.preference_versions import save_preferences
    from core.data.preferences import DEFAULTS, prepare_preferences
    from core.train.data import read_jsonl
    from core.workspace import Workspace

    conversations = [r["messages"] for r in read_jsonl(samples / "train.jsonl")
                     if len(r["messages"]) == 2 and r["messages"][0]["role"] == "user"]
    rng = random.Random(0)
    pairs = []
    for messages in conversations[: rows + eval_rows]:
        other = rng.choice(conversations)[-1]["content"]
        if other != messages[-1]["content"]:
            pairs.append({"prompt": messages[:1], "chosen": messages[-1:], "rejected": [
                {"role": "assistant", "content": other}]})
    train_file, held_out = workspace / "pairs.jsonl", workspace / "heldout.jsonl"
    train_file.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs[:rows]), encoding="utf-8")
    held_out.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs[rows:]), encoding="utf-8")
    options = dataclasses.replace(DEFAULTS, validation_share=0.0, model="")
    return save_preferences(Workspace(workspace).ensure(), prepare_preferences([train_file], options), "pairs")


def bench_settings(model: str, version: str):
    from core.train.settings import CPU_PRESET, preset_settings

    return preset_settings(CPU_PRESET, model=model, dataset=version, method="dpo", beta=BETA, epochs=1.0,
                           max_steps=0, learning_rate=5e-4, warmup_ratio=0.0, eval_steps=0, save_steps=0,
                           logging_steps=1000, seed=7, batch_size=2, grad_accum=4)


def run_arm(args: argparse.Namespace) -> dict:
    from core.workspace import Workspace

    workspace = Workspace(Path(args.workspace)).ensure()
    settings = bench_settings(args.model, args.version)
    assert settings.effective_batch == BATCH
    passes = time_training_passes()
    # the app arm is train_bench's: the run's own recipe, here `core.train.preference.train` (method dpo)
    model, tokens, seconds, processed, peak = (app_arm if args.arm == "app" else baseline_arm)(settings, workspace)
    warm = warm_passes(passes)
    return {"tokens_per_s": sum(t for t, _ in warm) / sum(s for _, s in warm), "real_tokens": tokens,
            "seconds": seconds, "waste": processed / tokens, "peak_rss_mb": peak,
            "eval_loss": held_out_dpo_loss(model, settings, workspace)}


def time_training_passes() -> list[tuple[int, float, int]]:
    """(pairs, seconds, real tokens) of every forward + backward pass, in order (both arms use DPOTrainer)."""
    from trl import DPOTrainer

    passes, original = [], DPOTrainer.training_step

    def timed(self, model, inputs, *args, **kwargs):
        started = time.perf_counter()
        loss = original(self, model, inputs, *args, **kwargs)
        passes.append((inputs["input_ids"].shape[0] // 2, time.perf_counter() - started,
                       int(inputs["attention_mask"].sum())))
        return loss

    DPOTrainer.training_step = timed
    return passes


def warm_passes(passes: list[tuple[int, float, int]]) -> list[tuple[int, float]]:
    """(tokens, seconds) of the passes after the first optimizer step (the first BATCH pairs)."""
    seen, warm = 0, []
    for pairs, seconds, tokens in passes:
        if seen >= BATCH:
            warm.append((tokens, seconds))
        seen += pairs
    return warm


def baseline_arm(settings, workspace):
    """A plain DPOTrainer: the same pairs and LoRA; TRL's default batching and checkpointing."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from core import models
    from core.data.preference_versions import load_pairs
    from core.train.recipe import lora_config

    model_dir = models.resolve(settings.model, workspace)
    rows = [{key: r[key] for key in ("prompt", "chosen", "rejected")} for r in load_pairs(settings.dataset)]
    config = DPOConfig(output_dir=tempfile.mkdtemp(prefix="baseline-"), num_train_epochs=1,
                       per_device_train_batch_size=BATCH, learning_rate=settings.learning_rate,
                       lr_scheduler_type=settings.scheduler, seed=settings.seed, beta=BETA,
                       max_length=settings.max_length, use_cpu=True, bf16=False, save_strategy="no",
                       report_to="none", disable_tqdm=True, logging_steps=1000)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=config,
                         train_dataset=Dataset.from_list(rows), processing_class=AutoTokenizer.from_pretrained(model_dir),
                         peft_config=lora_config(settings))
    collate, counted = trainer.data_collator, {"real": 0, "processed": 0}

    def counting(examples):
        batch = collate(examples)
        counted["real"] += int(batch["attention_mask"].sum())
        counted["processed"] += batch["input_ids"].numel()
        return batch

    trainer.data_collator = counting
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return trainer.model, counted["real"], seconds, counted["processed"], peak_rss_mb()


def held_out_dpo_loss(model, settings, workspace) -> float:
    """Mean DPO loss on the held-out pairs, the base model (adapter off) as the reference, no padding."""
    import math

    from transformers import AutoTokenizer

    from core import models
    from core.evaluate.preference_check import answer_logp

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(settings.model, workspace))
    pairs = [json.loads(line) for line in (Path(workspace.root) / "heldout.jsonl").read_text().splitlines()]
    model.eval()

    def margin(pair) -> float:
        chosen = answer_logp(model, tokenizer, pair["prompt"], pair["chosen"][0]["content"])[0]
        rejected = answer_logp(model, tokenizer, pair["prompt"], pair["rejected"][0]["content"])[0]
        return chosen - rejected

    trained = [margin(pair) for pair in pairs]
    with model.disable_adapter():
        reference = [margin(pair) for pair in pairs]
    return sum(-math.log(1 / (1 + math.exp(-BETA * (t - r)))) for t, r in zip(trained, reference)) / len(pairs)


def report(results: dict) -> None:
    med = {arm: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for arm, runs in results.items()}
    app, base = med["app"], med["baseline"]
    print("\nmedians over", len(results["app"]), "repetitions")
    print(f"{'':10s} {'tokens/s':>9s} {'peak RSS MB':>12s} {'waste':>6s} {'DPO loss':>9s}")
    for arm in ("baseline", "app"):
        m = med[arm]
        print(f"{arm:10s} {m['tokens_per_s']:9.1f} {m['peak_rss_mb']:12.0f} {m['waste']:6.3f} {m['eval_loss']:9.4f}")
    print(f"\nspeed-up {app['tokens_per_s'] / base['tokens_per_s']:.2f}× (goal ≥ 1.5) · "
          f"RSS {app['peak_rss_mb'] / base['peak_rss_mb']:.2f}× (goal ≤ 1.0) · "
          f"held-out loss ratio {app['eval_loss'] / base['eval_loss']:.4f} (goal within 1 %) · "
          f"real tokens per arm {int(app['real_tokens'])}")


if __name__ == "__main__":
    main()
