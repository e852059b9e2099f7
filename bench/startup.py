"""Start-up time: `python app.py` to its first HTTP 200, against a bare five-tab Gradio app.

Both are launched the same way as separate processes, alternating over repetitions because this
machine is shared and noisy; the medians and their ratio are printed (goal: ratio <= 1.5).

    python bench/startup.py [--repeats 3]
    python bench/startup.py --first-answer [--repeats 3]

`--first-answer`: from `python app.py` to the page's first HTTP 200, and to the first answer token of
the default model through `/v1` when a question is sent as soon as the page answers (the model loads in
the background once the page is up, so this shows what the first question still waits for).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = '''
import sys
import gradio as gr
with gr.Blocks() as demo:
    for name in ["Data", "Train", "Export", "Chat", "Evaluate"]:
        with gr.Tab(name):
            gr.Markdown(f"## {name}")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), ssr_mode=False)
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_to_first_200(command: list[str], port: int, timeout_s: float = 300.0) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        while time.perf_counter() - started < timeout_s:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"no HTTP 200 within {timeout_s} s: {command}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def first_answer(workspace: Path, timeout_s: float = 300.0) -> tuple[float, float]:
    """Seconds from start to the page's first 200, and to the first streamed answer token via /v1."""
    import json

    port = free_port()
    command = [sys.executable, "app.py", "--port", str(port), "--workspace", str(workspace)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except OSError:
                if time.perf_counter() - started > timeout_s:
                    raise TimeoutError(f"no HTTP 200 within {timeout_s} s") from None
                time.sleep(0.05)
        page = time.perf_counter() - started
        body = json.dumps({"model": "default", "stream": True, "max_tokens": 8,
                           "messages": [{"role": "user", "content": "Say hello."}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            for line in response:
                if line.startswith(b"data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                    return page, time.perf_counter() - started
        raise RuntimeError("the answer had no content")
    finally:
        process.terminate()
        process.wait(timeout=30)


def bench_first_answer(repeats: int) -> None:
    pages, answers = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            page, answer = first_answer(Path(tmp) / f"ws{repeat}")
            pages.append(page)
            answers.append(answer)
            print(f"  run {repeat + 1}: page {page:.2f} s, first answer token via /v1 {answer:.2f} s", flush=True)
    print(f"from start: page {statistics.median(pages):.2f} s, first answer token of the default model "
          f"via /v1 {statistics.median(answers):.2f} s (medians of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--first-answer", action="store_true",
                        help="time from start to the page and to the default model's first answer via /v1")
    args = parser.parse_args()
    if args.first_answer:
        return bench_first_answer(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_app.py"
        bare.write_text(BARE_APP)
        times: dict[str, list[float]] = {"chatsmith": [], "bare gradio": []}
        for repeat in range(args.repeats):
            arms = [("chatsmith", lambda port: [sys.executable, "app.py", "--port", str(port),
                                                 "--workspace", str(Path(tmp) / "ws")]),
                    ("bare gradio", lambda port: [sys.executable, str(bare), str(port)])]
            for name, command in arms if repeat % 2 == 0 else reversed(arms):
                port = free_port()
                times[name].append(time_to_first_200(command(port), port))
                print(f"  run {repeat + 1} {name}: {times[name][-1]:.2f} s", flush=True)
    app_s, bare_s = (statistics.median(times[name]) for name in ("chatsmith", "bare gradio"))
    print(f"chatsmith app.py: {app_s:.2f} s (median of {args.repeats})")
    print(f"bare five-tab gradio app: {bare_s:.2f} s (median of {args.repeats})")
    print(f"ratio: {app_s / bare_s:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
