"""Trainer plumbing: events for the live plot, the stop flag, power readings and checkpoint markers.

Contract: `ProgressCallback` turns Trainer logs into one `events.jsonl` record per log (step, loss,
eval_loss, eval_s (seconds the evaluation took), learning_rate, grad_norm, tokens_per_s, step_s (seconds
per step), memory_gb, power_w, and for DPO / KTO the reward margin and preference accuracy) and honours a
stop request by saving a checkpoint and ending training. `CompleteMarker` writes `chatsmith-complete` into a checkpoint
folder after the Trainer has finished writing it; resume only trusts marked checkpoints, so a kill -9
in the middle of a save leaves the previous one in charge. `CountingCollator` counts
real (non-pad) tokens, the figure tokens/s is about. The reporter is a `core.jobs.JobContext` or
anything with `log`, `event`, `progress` and `should_stop`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from core.train.runs import COMPLETE_MARKER
from core.train.settings import DEFAULT_WATTS

PREFERENCE_METRICS = {"rewards/margins": "reward_margin", "rewards/accuracies": "preference_accuracy",
                      "eval_rewards/margins": "eval_reward_margin", "eval_rewards/accuracies": "eval_preference_accuracy"}
"""DPO and KTO log names → event names: the reward margin and the preference accuracy (share of pairs whose
chosen answer gets the higher implicit reward), on training batches and on held-out pairs."""


class _Counting:
    """TRL's collator that also counts the real tokens it hands out, pads excluded."""

    real_tokens: int = 0
    processed_tokens: int = 0

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        self.real_tokens += sum(len(example["input_ids"]) for example in examples)
        self.processed_tokens += batch["input_ids"].numel()
        return batch


def read_power_watts(device_kind: str, stated_watts: float) -> tuple[float, str]:
    """Watts now, and where the figure comes from ("nvml" or "stated")."""
    if device_kind == "cuda":
        try:
            import torch

            return torch.cuda.power_draw() / 1000.0, "nvml"  # milliwatts, through NVML
        except Exception:  # noqa: BLE001 - no NVML library: fall back to the stated figure
            pass
    return stated_watts or DEFAULT_WATTS.get(device_kind, 65.0), "stated"


def memory_gb(device_kind: str) -> float:
    if device_kind == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    import psutil

    return psutil.Process().memory_info().rss / 2**30


def _on_any_process(flag: bool) -> bool:
    """`flag` agreed by every process `accelerate launch` started, so they stop at the same step: one that
    stopped alone would leave the others waiting for it in the next gradient exchange."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    agreed = torch.tensor([int(flag)], device=device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
    return bool(agreed.item())


class _Progress:
    """Reports every log to the job and stops cleanly (with a checkpoint) when asked."""

    def __init__(self, reporter: Any, counter: Any, device_kind: str, stated_watts: float):
        self.reporter = reporter
        self.counter = counter
        self.device_kind = device_kind
        self.stated_watts = stated_watts
        self.energy_wh = 0.0
        self.stopped_at: int | None = None
        self._last_time = time.perf_counter()
        self._last_tokens = 0
        self._last_step = 0
        self._energy_time = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._last_time, self._last_tokens = time.perf_counter(), self.counter.real_tokens
        self._last_step = state.global_step  # a resumed run starts past 0
        self.reporter.progress(state.global_step, state.max_steps, f"step {state.global_step}/{state.max_steps}")

    def on_step_end(self, args, state, control, **kwargs):
        self._step_end = (time.perf_counter(), self.counter.real_tokens)
        self.reporter.progress(state.global_step, state.max_steps, f"step {state.global_step}/{state.max_steps}")
        if _on_any_process(self.reporter.should_stop()):
            self.stopped_at = state.global_step
            control.should_save = True  # a stop always leaves a resumable checkpoint
            control.should_training_stop = True
        return control

    def on_evaluate(self, args, state, control, **kwargs):
        # Eval batches pass through the same collator: keep them out of the training tokens/s.
        ended, tokens = getattr(self, "_step_end", (time.perf_counter(), self.counter.real_tokens))
        self._last_time += time.perf_counter() - ended
        self._last_tokens += self.counter.real_tokens - tokens

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        now = time.perf_counter()
        elapsed = max(now - self._last_time, 1e-9)
        watts, source = read_power_watts(self.device_kind, self.stated_watts)
        self.energy_wh += watts * (now - self._energy_time) / 3600
        self._energy_time = now
        record = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm"):
            if key in logs:
                record[key] = float(logs[key])
        record.update({name: float(logs[key]) for key, name in PREFERENCE_METRICS.items() if key in logs})
        if "eval_runtime" in logs:  # the Trainer's own timing of the evaluation: the time left counts them in
            record["eval_s"] = round(float(logs["eval_runtime"]), 3)
        if "loss" in logs:
            record["tokens_per_s"] = round((self.counter.real_tokens - self._last_tokens) / elapsed, 1)
            steps = state.global_step - self._last_step
            if steps > 0:
                record["step_s"] = round(elapsed / steps, 3)
            self._last_time, self._last_tokens, self._last_step = now, self.counter.real_tokens, state.global_step
        record.update(memory_gb=round(memory_gb(self.device_kind), 3), power_w=round(watts, 1), power_source=source)
        self.reporter.event(**record)
        shown = ", ".join(f"{key}={value:.4g}" for key, value in record.items() if isinstance(value, float))
        self.reporter.log(f"step {state.global_step}/{state.max_steps}: {shown}")


class _Marker:
    """Marks a checkpoint complete once the Trainer has written every file of it."""

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            (folder / COMPLETE_MARKER).write_text(f"{state.global_step}\n", encoding="utf-8")
        return control


_LOGIC = {"CountingCollator": _Counting, "ProgressCallback": _Progress, "CompleteMarker": _Marker}


def __getattr__(name: str) -> type:
    """`CountingCollator` (on TRL's collator), `ProgressCallback` and `CompleteMarker` (on transformers'
    `TrainerCallback`): the logic above on the libraries' base classes, made on first use and kept (PEP 562),
    because importing those libraries takes seconds and importing a `core` module must stay cheap."""
    if name not in _LOGIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from transformers import TrainerCallback
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    base = DataCollatorForLanguageModeling if name == "CountingCollator" else TrainerCallback
    made = type(name, (_LOGIC[name], base), {"__module__": __name__, "__doc__": _LOGIC[name].__doc__})
    globals()[name] = made
    return made
