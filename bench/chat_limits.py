"""Chat against the machine's limits: decode vs the memory-bandwidth bound, and long conversations.

    python bench/chat_limits.py [--workspace DIR] [--part all|bandwidth|turns|clients] [--rounds 3] [--turns 12]
                                [--model default|FOLDER]  (the model the bandwidth part decodes)
    (also reached as `python bench/chat_bench.py --part bandwidth|turns|clients`)

1. bandwidth — this machine's memory bandwidth, measured in this run with a large array copy on as many
   threads as llama.cpp decodes with, and llama.cpp's decode tokens/s of the default model's Q8_0 GGUF
   against the bound it sets: one token reads about all the weights, so
       bound (tokens/s) = bandwidth (bytes/s) / GGUF size (bytes).
   Goal: decode >= 70 % of the bound. Then what stands in the way: decode and copy on 1 thread against all
   of them, and how much of a token's wall time llama.cpp spends inside its own decode (its perf counters).
2. turns — time to first token through the running app's API (`/v1/chat/completions`, streamed), at
   turn 1 and at turn N (default 12) of a conversation of about 150 tokens a turn (a question of ~75
   tokens, an answer of up to 75), for the default GGUF and for the default base + a LoRA adapter.
   Each round is a new conversation. Goal: turn N <= 1.5x turn 1 for the GGUF. Then, in this process, what a
   later turn costs inside llama.cpp: the prompt tokens it evaluates at turn 2 and turn N, and their time.
3. clients — time to first token of 4 streaming clients on the default GGUF through the running app's API,
   each against a lone client's, with one slot (whole answers in turn) and with the app's default slots,
   all 4 sent at once and 4 joining 0.5 s apart (each while the others stream). Goal: every client's first
   token within 2x a lone client's. Every client is printed, not only the worst.

Medians over rounds; a noisy box swings single timings, so measure on a quiet one.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from core import inference  # noqa: E402
from core.workspace import Workspace  # noqa: E402
from chat_bench import running_app, stream_answer  # noqa: E402

COPY_BYTES = 512 << 20  # far above any cache, so the copy runs at memory speed
ANSWER_TOKENS = 75
TOPICS = ["a lighthouse keeper", "a bakery in Lyon", "the history of tea", "a trip up a volcano",
          "learning the violin", "a garden through the seasons", "a chess club", "an old railway"]


# ---- 1. decode against the memory-bandwidth bound ------------------------------------------------

def copy_bandwidth(threads: int, repeats: int = 5) -> float:
    """Bytes per second moved (read + written) by the best of `repeats` copies of COPY_BYTES, split over
    `threads` (numpy releases the GIL while it copies)."""
    import numpy as np

    source = np.ones(COPY_BYTES // 8)
    target = np.empty_like(source)
    parts = [(slice(start, start + len(source) // threads)) for start in range(0, len(source), len(source) // threads)]
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            started = time.perf_counter()
            list(pool.map(lambda part: np.copyto(target[part], source[part]), parts))
            best = min(best, time.perf_counter() - started)
    return 2 * COPY_BYTES / best


def bench_bandwidth(workspace: Workspace, tokens: int, rounds: int, model: str = "default") -> None:
    from chat_bench import PROMPT, decode_rate, q8_gguf  # the decode arm chat_bench already measures

    from core.inference import GenerationSettings

    gguf = q8_gguf(workspace, model)
    llama = inference.gguf_backend(gguf)
    threads = llama._llama.n_threads
    settings = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=tokens)
    bandwidths, rates = [], []
    for _ in range(rounds):  # alternate, so both see the same load
        bandwidths.append(copy_bandwidth(threads))
        rates.append(decode_rate(llama, settings)[0])
        print(f"  copy {bandwidths[-1] / 1e9:.1f} GB/s, decode {rates[-1]:.1f} tokens/s", flush=True)
    bandwidth, rate, size = statistics.median(bandwidths), statistics.median(rates), gguf.stat().st_size
    bound = bandwidth / size
    print(f"decode vs memory bandwidth ({threads} threads, prompt '{PROMPT[0]['content'][:30]}…'):\n"
          f"  bandwidth {bandwidth / 1e9:.1f} GB/s (array copy, bytes read + written), GGUF {size / 1e6:.0f} MB\n"
          f"  bound = bandwidth / GGUF bytes = {bound:.0f} tokens/s; llama.cpp Q8_0 {rate:.1f} tokens/s "
          f"-> {rate / bound:.0%} of the bound (goal >= 70 %)")
    if threads > 1:
        thread_scaling(gguf, threads, settings, rounds)
    inside_llama_cpp(llama, settings)


def thread_scaling(gguf: Path, threads: int, settings, rounds: int) -> None:
    """Decode and copy on 1 thread against `threads`: a memory-bound decode cannot speed up more than the copy
    does when threads are added; one that speeds up with the cores is bound by arithmetic instead."""
    import os

    from chat_bench import decode_rate

    from core.inference.llama_cpp_engine import LlamaCppBackend

    results, before = {}, os.environ.get("CHATSMITH_THREADS")
    for count in (1, threads):
        os.environ["CHATSMITH_THREADS"] = str(count)
        backend = LlamaCppBackend(gguf)
        pairs = [(copy_bandwidth(count), decode_rate(backend, settings)[0]) for _ in range(rounds)]
        results[count] = (statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs))
        print(f"  {count} thread(s): copy {results[count][0] / 1e9:.1f} GB/s, decode {results[count][1]:.1f} tokens/s, "
              f"{results[count][1] / (results[count][0] / gguf.stat().st_size):.0%} of that copy's bound", flush=True)
    if before is None:
        os.environ.pop("CHATSMITH_THREADS")
    else:
        os.environ["CHATSMITH_THREADS"] = before
    (copy_1, decode_1), (copy_n, decode_n) = results[1], results[threads]
    print(f"  from 1 to {threads} threads: decode {decode_n / decode_1:.2f}x, copy {copy_n / copy_1:.2f}x (a decode "
          "bound by memory speeds up no more than the copy; on a busy box llama.cpp's threads wait on each other)")


def inside_llama_cpp(backend, settings) -> None:
    """How much of a decoded token's wall time llama.cpp itself spends (its perf counters), and so how much the
    Python around it (llama-cpp-python's loop, the app's streaming) adds."""
    import llama_cpp
    from chat_bench import PROMPT

    context = backend._llama._ctx.ctx
    llama_cpp.llama_perf_context_reset(context)
    usage, first = {}, None
    for _ in backend.stream(PROMPT, settings, usage=usage):
        first = first or time.perf_counter()
    wall = (time.perf_counter() - first) / max(usage["completion_tokens"] - 1, 1) * 1e3
    perf = llama_cpp.llama_perf_context(context)
    inside = perf.t_eval_ms / max(perf.n_eval, 1)
    print(f"  per token: {wall:.2f} ms wall, {inside:.2f} ms inside llama.cpp's decode: the Python around it "
          f"adds {max(wall - inside, 0) / wall:.0%}")


# ---- 2. time to first token at turn 1 and turn N ---------------------------------------------------

def question(topic: str, turn: int) -> str:
    """About 75 tokens: long enough that a turn of question and answer is about 150."""
    return (f"Turn {turn}. Tell me more about {topic}. I would like to hear about the people involved, the "
            f"places, what a normal day looks like, what changed over the years and why, and one detail most "
            f"people do not know. Please keep it friendly, concrete and short enough to read in a minute, "
            f"and end with a question for me about {topic}.")


def conversation(api: str, model: str, topic: str, turns: int) -> list[float]:
    """Time to first token of each turn of one conversation through the API; answers are kept."""
    messages = [{"role": "system", "content": "You are a friendly, knowledgeable assistant."}]
    firsts = []
    for turn in range(1, turns + 1):
        messages.append({"role": "user", "content": question(topic, turn)})
        first, answer = stream_answer(api, model, messages, temperature=0.7, max_tokens=ANSWER_TOKENS, seed=turn)
        firsts.append(first)
        messages.append({"role": "assistant", "content": answer})
    return firsts


def lora_adapter(workspace: Workspace) -> str:
    """An untrained LoRA adapter on the default model, as a run of the workspace (what Chat lists)."""
    folder = workspace.runs / "bench-adapter" / "adapter"
    if not (folder / "adapter_config.json").is_file():
        from peft import LoraConfig, get_peft_model

        from core.models import load_causal_lm, materialize_default_model

        base = load_causal_lm(materialize_default_model(workspace))
        config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
        get_peft_model(base, config).save_pretrained(folder)
    return "run/bench-adapter"


def bench_turns(workspace: Workspace, rounds: int, turns: int) -> None:
    import os

    os.environ.setdefault("CHATSMITH_THREADS", str(inference.default_threads()))
    models = {"GGUF (llama.cpp)": "default", "base + adapter (transformers)": lora_adapter(workspace)}
    with running_app(workspace) as api:
        for name, model in models.items():
            conversation(api, model, "warming up", 1)  # loads the model: not what a turn costs
            first, last = [], []
            for round_ in range(rounds):
                times = conversation(api, model, TOPICS[round_ % len(TOPICS)], turns)
                first.append(times[0])
                last.append(times[-1])
                print(f"  {name}: turn 1 {times[0] * 1000:.0f} ms, turn {turns} {times[-1] * 1000:.0f} ms", flush=True)
            one, many = statistics.median(first), statistics.median(last)
            goal = " (goal <= 1.5x)" if model == "default" else ""
            print(f"time to first token, {name}, through /v1 ({os.environ['CHATSMITH_THREADS']} threads): "
                  f"turn 1 {one * 1000:.0f} ms, turn {turns} {many * 1000:.0f} ms -> {many / one:.2f}x{goal}")
    turn_costs(workspace, turns)


def turn_costs(workspace: Workspace, turns: int) -> None:
    """What a later turn costs inside llama.cpp (its perf counters, in this process): the prompt tokens it
    evaluates and the time they take. Only the new tokens are evaluated when the prefix is kept, so the time a
    later turn adds is attention over the longer context, not a recomputed history."""
    import llama_cpp
    from chat_bench import q8_gguf

    from core.inference import GenerationSettings
    from core.inference.llama_cpp_engine import LlamaCppBackend

    backend = LlamaCppBackend(q8_gguf(workspace, "default"))
    context = backend._llama._ctx.ctx
    settings = GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=ANSWER_TOKENS)
    messages = [{"role": "system", "content": "You are a friendly, knowledgeable assistant."}]
    for turn in range(1, turns + 1):
        messages.append({"role": "user", "content": question(TOPICS[0], turn)})
        llama_cpp.llama_perf_context_reset(context)
        stream = backend.stream(messages, settings)
        answer = next(stream, "")
        perf = llama_cpp.llama_perf_context(context)  # the prompt is evaluated before the first piece
        answer += "".join(stream)
        if turn in (2, turns):  # turn 1 also pays the model's first use
            print(f"  GGUF turn {turn}: {backend.count_tokens(messages)} prompt tokens, {perf.n_p_eval} evaluated "
                  f"in {perf.t_p_eval_ms:.0f} ms", flush=True)
        messages.append({"role": "assistant", "content": answer})


# ---- 3. several clients at once --------------------------------------------------------------------

CLIENTS = 4
_asked = itertools.count(1)  # numbers every question, so no prompt is a prefix the model has kept


def first_token(api: str, index: int, delay_s: float = 0.0) -> float:
    """Seconds from sending to the first piece of a streamed answer of ~150 tokens, after `delay_s`."""
    time.sleep(delay_s)
    messages = [{"role": "user", "content": question(TOPICS[index % len(TOPICS)], next(_asked))}]
    return stream_answer(api, "default", messages, temperature=0.7, max_tokens=2 * ANSWER_TOKENS, seed=index)[0]


def bench_clients(workspace: Workspace, rounds: int) -> None:
    import os

    from core.inference.llama_cpp_engine import chat_slots

    os.environ.setdefault("CHATSMITH_THREADS", str(inference.default_threads()))
    users = os.environ.get("CHATSMITH_CHAT_SLOTS")
    try:
        for slots in (1, chat_slots()):
            os.environ["CHATSMITH_CHAT_SLOTS"] = str(slots)
            with running_app(workspace) as api:
                first_token(api, 0)  # loads the model: not what a client waits for
                lone = statistics.median(first_token(api, index) for index in range(rounds))
                for scenario, gap in (("sent at once", 0.0), ("joining 0.5 s apart", 0.5)):
                    worst = []
                    for _ in range(rounds):
                        with ThreadPoolExecutor(CLIENTS) as pool:
                            firsts = list(pool.map(lambda index: first_token(api, index, index * gap), range(CLIENTS)))
                        worst.append(max(firsts))
                        print(f"  {slots} slot(s), {scenario}: " + ", ".join(f"{f * 1000:.0f}" for f in firsts)
                              + f" ms (lone {lone * 1000:.0f} ms)", flush=True)
                    print(f"time to first token, {CLIENTS} clients {scenario}, {slots} slot(s): worst "
                          f"{statistics.median(worst) * 1000:.0f} ms vs a lone client's {lone * 1000:.0f} ms -> "
                          f"{statistics.median(worst) / lone:.2f}x (goal <= 2x)", flush=True)
    finally:
        os.environ.pop("CHATSMITH_CHAT_SLOTS", None)
        if users is not None:
            os.environ["CHATSMITH_CHAT_SLOTS"] = users


def run(workspace: Workspace, part: str, rounds: int, turns: int = 12, tokens: int = 64,
        model: str = "default") -> None:
    if part in ("all", "bandwidth"):
        bench_bandwidth(workspace, tokens, rounds, model)
    if part in ("all", "turns"):
        bench_turns(workspace, rounds, turns)
    if part in ("all", "clients"):
        bench_clients(workspace, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default=str(ROOT / "workspace"))
    parser.add_argument("--part", choices=["all", "bandwidth", "turns", "clients"], default="all")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=12, help="the later turn measured (and the conversation's length)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens decoded per bandwidth round")
    parser.add_argument("--model", default="default", help="the model whose Q8_0 GGUF the bandwidth part decodes "
                        "(a local HF folder; the other parts always use the default model)")
    args = parser.parse_args()
    run(Workspace.resolve(args.workspace), args.part, args.rounds, args.turns, args.tokens, args.model)


if __name__ == "__main__":
    main()
