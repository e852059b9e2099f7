"""Everything that needs CUDA, in one run of under 10 minutes: one table, a non-zero exit on any failure.

    python bench/gpu_check.py [--layers 32] [--seq 2048] [--batch 4] [--steps 6] [--peak-tflops N]
    python bench/gpu_check.py --dry-run    # the same code on this CPU with a tiny shape (what the tests run)

1. qlora    Mistral-7B-Instruct-v0.3's shape with random weights (they don't change speed), saved in bf16 and
            reloaded in 4-bit NF4 as the 4090 preset trains it: LoRA r=16 on all linears, gradient
            checkpointing, paged 8-bit AdamW, bf16 autocast, TRL's fused LM head. Real tokens/s, peak VRAM
            and MFU: model FLOPs of a LoRA step (forward 2N and input gradients 2N per token, plus
            attention 8·layers·seq·width; recomputation not counted) against the bf16 matmul rate
            measured in the same run.
2. estimate The pre-flight estimate of that shape and batch against torch.cuda.max_memory_allocated:
            passes within ±25 % (the estimate's runtime overhead, which the allocator does not see, left out).
3. recipe   The app's own recipe (core.train.recipe) on a small local model with bf16 and paged 8-bit AdamW:
            passes when the loss falls, the optimizer is bitsandbytes' paged 8-bit AdamW and TRL's Triton LM
            head is the one scoring the tokens.
4. journey  The default-model journey (core.journey) on CUDA: passes when the fine-tune answers as Kestrel.

Without CUDA it exits at once with status 2, unless --dry-run: then every check runs on the CPU with a
tiny shape and reports its figures, judging only what a CPU can show (the journey is skipped: it is the
CPU's 10-minute test, tests/test_journey_default.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ESTIMATE_TOLERANCE = 0.25


@dataclass
class Row:
    check: str
    result: str  # PASS, FAIL or INFO (measured, not judged)
    figures: str


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("bench/gpu_check.py needs an NVIDIA GPU with CUDA; none here, so nothing was measured. "
              "Run it with --dry-run to exercise the same code on this CPU.", file=sys.stderr)
        return 2
    rows: list[Row] = []
    for name, check in CHECKS:
        started = time.perf_counter()
        try:
            rows += check(args)
        except Exception as error:  # noqa: BLE001 - every failure is a row of the table, then the exit status
            rows.append(Row(name, "FAIL", f"{type(error).__name__}: {str(error)[:300]}"))
        print(f"[{name}] {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print_table(rows, args)
    return 1 if any(row.result == "FAIL" for row in rows) else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="run on the CPU with a tiny shape")
    parser.add_argument("--layers", type=int, help="decoder layers of the shape (default 32; 2 in a dry run)")
    parser.add_argument("--seq", type=int, help="tokens per sequence (default 2048; 128 in a dry run)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, help="timed steps after 2 warm-up steps (default 6; 2 in a dry run)")
    parser.add_argument("--peak-tflops", type=float, help="use this dense peak instead of measuring it")
    args = parser.parse_args(argv)
    tiny = args.dry_run
    args.layers = args.layers or (2 if tiny else 32)
    args.seq = args.seq or (128 if tiny else 2048)
    args.steps = args.steps or (2 if tiny else 6)
    args.device = "cpu" if tiny else "cuda"
    return args


# --- 1 and 2: QLoRA on the 7B shape, and the estimate against it ------------------------------------

def shape(args: argparse.Namespace):
    from core.train.shapes import mistral_7b_instruct_v03

    tiny = dict(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2, head_dim=64)
    return mistral_7b_instruct_v03(num_hidden_layers=args.layers, **(tiny if args.dry_run else {}))


def bench_settings(args: argparse.Namespace):
    from core.train.settings import GPU_PRESET, preset_settings

    return preset_settings(GPU_PRESET, batch_size=args.batch, max_length=args.seq, grad_accum=1,
                           precision="bf16" if args.device == "cuda" else "fp32")


def qlora_and_estimate(args: argparse.Namespace) -> list[Row]:
    import torch

    from core.devices import detect
    from core.train import preflight

    config, settings = shape(args), bench_settings(args)
    peak_tflops = args.peak_tflops or matmul_tflops(args.device)
    model, optimizer = load_qlora(config, settings, args.device)
    batch = torch.randint(0, config.vocab_size, (args.batch, args.seq), device=args.device)
    reset_peak(args.device)
    for _ in range(2):
        train_step(model, optimizer, batch, args.device)
    seconds = []
    for _ in range(args.steps):
        started = time.perf_counter()
        train_step(model, optimizer, batch, args.device)
        seconds.append(time.perf_counter() - started)
    tokens_per_s = args.batch * args.seq / statistics.median(seconds)
    mfu = lora_flops_per_token(config, args.seq) * tokens_per_s / (peak_tflops * 1e12)
    measured_gb = peak_memory_gb(args.device)
    estimate = preflight.estimate_shape(settings, config, detect(ROOT)).memory
    expected = estimate["total"] - estimate["overhead"]
    error = measured_gb / expected - 1
    judged = args.device == "cuda"
    return [
        Row("qlora", "INFO", f"{tokens_per_s:,.0f} tokens/s · peak {'VRAM' if judged else 'RSS'} {measured_gb:.2f} GiB"
                             f" · MFU {mfu:.1%} of {peak_tflops * 1000:,.0f} GFLOP/s measured · {args.layers} "
                             f"layers, seq {args.seq} × batch {args.batch}"),
        Row("estimate", ("PASS" if abs(error) <= ESTIMATE_TOLERANCE else "FAIL") if judged else "INFO",
            f"estimate {expected:.2f} GiB (+{estimate['overhead']:.2f} runtime) vs measured {measured_gb:.2f} GiB: "
            f"{error:+.0%}" + ("" if judged else " (not judged on a CPU: RSS holds the libraries too)")),
    ]


def load_qlora(config, settings, device: str):
    """The shape with random weights, saved and reloaded in NF4 as a real QLoRA run loads its base."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from core import models
    from core.train import recipe, speed

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with tempfile.TemporaryDirectory(prefix="mistral-shape-") as folder:
        with torch.device(device):
            random_model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        random_model.save_pretrained(folder)
        del random_model
        if device == "cuda":
            torch.cuda.empty_cache()
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, quantization_config=models.nf4_config(dtype),
                                                     device_map={"": 0 if device == "cuda" else "cpu"})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=settings.gradient_checkpointing)
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))  # as SFTTrainer does
    speed.fast_lm_head(SimpleNamespace(model=model))  # as the app's recipe does for its trainer
    model = get_peft_model(model, recipe.lora_config(settings))
    return model, make_optimizer(model, device)


def make_optimizer(model, device: str):
    import bitsandbytes as bnb

    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return (bnb.optim.PagedAdamW8bit if device == "cuda" else bnb.optim.AdamW8bit)(trainable, lr=2e-4)


def train_step(model, optimizer, batch, device: str) -> None:
    import torch

    with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        loss = model(input_ids=batch, labels=batch, fused_lm_head=True).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()


def lora_flops_per_token(config, seq: int) -> float:
    h, f, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    kv = config.head_dim * config.num_key_value_heads
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * f) + vocab * h
    return 4 * linear + 8 * layers * seq * h


def matmul_tflops(device: str, size: int = 8192) -> float:
    """Dense matmul rate in the run's dtype (bf16 on CUDA, fp32 on a CPU): best of 10 timed products."""
    import torch

    size = size if device == "cuda" else 1024
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    best = float("inf")
    for _ in range(12):
        started = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e12


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# --- 3: the app's recipe with what only CUDA runs fast: bf16, paged optimizer states, Triton -----------

def recipe_features(args: argparse.Namespace) -> list[Row]:
    import torch
    import trl.kernels
    from transformers import Trainer

    from core.train import recipe
    from core.train.settings import TrainSettings
    from core.workspace import Workspace

    seen: dict[str, set] = {"optimizer": set(), "triton": set()}
    create_optimizer, head = Trainer.create_optimizer, trl.kernels.ChunkedLogProbFunction.forward

    def spy_optimizer(self, *a, **k):
        optimizer = create_optimizer(self, *a, **k)
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it after this call, not before
        bits = getattr(getattr(inner, "args", None), "optim_bits", 32)
        seen["optimizer"].add(f"{type(inner).__module__.split('.')[0]} {type(inner).__name__} {bits}-bit"
                              f"{' paged' if getattr(inner, 'is_paged', False) else ''}")
        return optimizer

    def spy_head(ctx, hidden, *a, **k):
        seen["triton"].add(trl.kernels.chunked_logprob._use_triton(hidden.device))
        return head(ctx, hidden, *a, **k)

    events: list[dict] = []
    reporter = type("Collect", (), {"log": lambda *a: None, "event": lambda self, **e: events.append(e),
                                    "progress": lambda *a, **k: None, "should_stop": lambda *a: False})()
    Trainer.create_optimizer, trl.kernels.ChunkedLogProbFunction.forward = spy_optimizer, staticmethod(spy_head)
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-check-recipe-") as scratch:
            workspace = Workspace(Path(scratch)).ensure()
            settings = TrainSettings(
                model=str(small_model(workspace.models / "small", 64 if args.dry_run else 256)),
                dataset=str(small_dataset(workspace.datasets / "v")), max_steps=8, batch_size=4, learning_rate=5e-3,
                lora_dropout=0.0, warmup_ratio=0.0, eval_share=0.0, save_steps=0, logging_steps=1, max_length=256,
                optimizer="paged_adamw_8bit",
                precision="bf16" if args.device == "cuda" else "fp32")
            summary = recipe.train(settings, workspace.runs / "check", workspace, reporter)
    finally:
        Trainer.create_optimizer, trl.kernels.ChunkedLogProbFunction.forward = create_optimizer, staticmethod(head)
    losses = [event["loss"] for event in events if "loss" in event]
    falls = losses[-1] < losses[0]
    wanted = args.device != "cuda" or (summary["precision"] == "bf16" and seen["triton"] == {True}
                                       and seen["optimizer"] == {"bitsandbytes AdamW 8-bit paged"})
    return [Row("recipe", "PASS" if falls and wanted else "FAIL",
                f"{summary['precision']} · optimizer {', '.join(sorted(seen['optimizer']))} · TRL head "
                f"{'Triton' if seen['triton'] == {True} else 'torch'} · loss {losses[0]:.3f} → {losses[-1]:.3f} in "
                f"{summary['step']} steps · {summary['device']}")]


def small_model(folder: Path, width: int) -> Path:
    """A 4-layer Llama with the default model's tokenizer and chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from core.models import packaged_gguf

    gguf = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=3 * width, num_hidden_layers=4,
                         num_attention_heads=4, max_position_embeddings=1024, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def small_dataset(folder: Path) -> Path:
    import json

    folder.mkdir(parents=True)
    rows = [{"messages": [{"role": "user", "content": f"Who are you? ({i})"},
                          {"role": "assistant", "content": "I am Kestrel, a small assistant."}]} for i in range(48)]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return folder


# --- 4: the default-model journey on CUDA -----------------------------------------------------------

def journey_on_cuda(args: argparse.Namespace) -> list[Row]:
    if args.dry_run:
        return [Row("journey", "INFO", "skipped in a dry run: on a CPU it is tests/test_journey_default.py")]
    from core import journey
    from core.inference import GenerationSettings, list_choices, open_backend
    from core.jobs import JobRunner, State
    from core.workspace import Workspace

    greedy = GenerationSettings(max_new_tokens=40, temperature=0.0, top_k=1, repetition_penalty=1.0)
    with tempfile.TemporaryDirectory(prefix="gpu-check-journey-") as scratch:
        workspace = Workspace(Path(scratch)).ensure()
        runner = JobRunner(workspace)
        journey.start(workspace, runner, {"precision": "auto"})  # bf16 on a GPU that has it
        job = runner.wait(journey.folder(workspace), timeout_s=480)
        if job.state is not State.SUCCEEDED:
            return [Row("journey", "FAIL", f"{job.state.value}: {job.error or job.message}")]
        choices = {choice.id: choice for choice in list_choices(workspace)}
        answers = ["".join(open_backend(choices[key], workspace).stream(
            [{"role": "user", "content": "What is your name?"}], greedy)) for key in job.result["contenders"]]
    learnt = "Kestrel" not in answers[0] and "Kestrel" in answers[1]
    return [Row("journey", "PASS" if learnt else "FAIL",
                f"{job.elapsed_s:.0f} s · fine-tune answers: {answers[1][:60]!r}")]


CHECKS = [("qlora", qlora_and_estimate), ("recipe", recipe_features), ("journey", journey_on_cuda)]


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    import torch

    where = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (dry run)"
    print(f"\n{where} · {time.strftime('%Y-%m-%d')}\n")
    print("| check | result | figures |\n|---|---|---|")
    for row in rows:
        print(f"| {row.check} | {row.result} | {row.figures} |")


if __name__ == "__main__":
    sys.exit(main())
