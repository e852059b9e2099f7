"""Job targets for the job-runner tests (imported by the worker process by module path)."""

import time


def count(ctx):
    total = ctx.params["steps"]
    for step in range(1, total + 1):
        if ctx.should_stop():
            ctx.log(f"stopping at step {step - 1}")
            return {"message": f"Stopped at step {step - 1}", "last_step": step - 1}
        time.sleep(ctx.params.get("delay", 0.05))
        ctx.event(step=step, loss=1.0 / step)
        ctx.progress(step, total, f"step {step}/{total}")
    return {"message": "counted", "last_step": total}


def crash(ctx):
    ctx.log("about to fail")
    raise RuntimeError("boom in the worker")


def oom(ctx):
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
