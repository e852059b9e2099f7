"""Start-up time: `python app.py` to its first HTTP 200, against a bare five-tab Gradio app.

Both are launched the same way as separate processes, alternating over repetitions because this
machine is shared and noisy; the medians and their ratio are printed (goal: ratio <= 1.5).

    python bench/startup.py [--repeats 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
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
