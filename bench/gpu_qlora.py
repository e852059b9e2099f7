"""QLoRA speed on a GPU: a Mistral-7B-shaped model with random weights, as the 4090 preset trains it.

    python bench/gpu_qlora.py [--seq 2048] [--batch 4] [--steps 6] [--layers 32] [--peak-tflops N]

No download: the weights are random (they don't change speed). The model is built in bf16 on the GPU,
saved to a temp folder and loaded back in 4-bit NF4 through bitsandbytes, exactly the path a real
QLoRA run takes. LoRA r=16 on all linear layers, gradient checkpointing, paged 8-bit AdamW, bf16. It
prints real tokens/s, peak VRAM and MFU (model FLOPs utilisation, with PaLM's count: 6·N per token
for the weights plus 12·layers·width·seq for attention, against the card's dense bf16 peak). On a
machine without CUDA it exits at once with a message (status 2).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "4090": 165.2, "L40S": 362.0, "A6000": 155.0,
                    "L4": 121.0, "3090": 71.0, "A10": 125.0}  # dense, from the vendors' data sheets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="timed steps, after 2 warm-up steps")
    parser.add_argument("--layers", type=int, default=32, help="fewer layers for a quicker check")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if not in the table")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench/gpu_qlora.py needs an NVIDIA GPU with CUDA: 4-bit QLoRA runs on bitsandbytes' CUDA kernels. "
              "No CUDA device here, so nothing was measured.", file=sys.stderr)
        return 2
    model = load_qlora_model(args.layers)
    n_params = model_params(model.config)  # counted from the shape: 4-bit tensors pack two weights per element
    optimizer = make_optimizer(model)
    torch.cuda.reset_peak_memory_stats()
    batch = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), device="cuda")
    for _ in range(2):
        step(model, optimizer, batch)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(args.steps):
        step(model, optimizer, batch)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    report(args, model.config, n_params, seconds)
    return 0


def load_qlora_model(layers: int):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, MistralConfig

    config = MistralConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=layers,
                           num_attention_heads=32, num_key_value_heads=8, vocab_size=32768,
                           max_position_embeddings=32768, rope_theta=1e6, sliding_window=None)
    with tempfile.TemporaryDirectory(prefix="mistral-random-") as folder:
        with torch.device("cuda"):
            random_model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        random_model.save_pretrained(folder)
        del random_model
        torch.cuda.empty_cache()
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization, dtype=torch.bfloat16,
                                                     device_map={"": 0})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def make_optimizer(model):
    import bitsandbytes as bnb

    trainable = [p for p in model.parameters() if p.requires_grad]
    return bnb.optim.PagedAdamW8bit(trainable, lr=2e-4)


def step(model, optimizer, batch) -> None:
    import torch

    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=batch, labels=batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def model_params(config) -> int:
    """Parameters of the dense model (what MFU counts), from its shape."""
    h, f, layers, v = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    kv = h // config.num_attention_heads * config.num_key_value_heads
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * f + 2 * h
    return layers * per_layer + 2 * v * h + h


def report(args, config, n_params: int, seconds: float) -> None:
    import torch

    tokens = args.batch * args.seq * args.steps
    tokens_per_s = tokens / seconds
    flops_per_token = 6 * n_params + 12 * config.num_hidden_layers * config.hidden_size * args.seq
    name = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)
    print(f"GPU: {name} · Mistral-7B shape, {config.num_hidden_layers} layers, {n_params / 1e9:.2f}B params, "
          f"4-bit NF4 + LoRA r=16, seq {args.seq} × batch {args.batch}")
    print(f"tokens/s: {tokens_per_s:,.0f} · step: {seconds / args.steps:.2f} s · "
          f"peak VRAM: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if peak:
        print(f"MFU: {flops_per_token * tokens_per_s / (peak * 1e12):.1%} of {peak:.0f} TFLOP/s dense bf16")
    else:
        print("MFU: unknown peak for this GPU; pass --peak-tflops")


if __name__ == "__main__":
    sys.exit(main())
