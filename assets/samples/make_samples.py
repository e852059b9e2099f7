"""Write the shipped sample datasets from the content modules beside this script.

    python assets/samples/make_samples.py [OUT_DIR]

Re-running gives byte-identical files (into this folder unless OUT_DIR is given). The content (identity.py, everyday.py, science.py, coding.py,
general_zh.py) was written for Chatsmith; see README.md in this folder for what each file holds.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import coding  # noqa: E402
import everyday  # noqa: E402
import general_zh  # noqa: E402
import identity  # noqa: E402
import science  # noqa: E402


def alpaca() -> list[dict]:
    return identity.alpaca_rows()


def sharegpt() -> list[dict]:
    speakers = ("human", "gpt")
    return [{"conversations": [{"from": speakers[i % 2], "value": text} for i, text in enumerate(turns)]}
            for turns in everyday.CONVERSATIONS]


def ultrachat() -> list[dict]:
    return [{"id": f"science-{index:03d}", "data": turns} for index, turns in enumerate(science.CONVERSATIONS)]


def messages() -> list[dict]:
    rows = []
    for system, turns in coding.CONVERSATIONS:
        chat = [{"role": "system", "content": system}] if system else []
        chat += [{"role": ("user", "assistant")[i % 2], "content": text} for i, text in enumerate(turns)]
        rows.append({"messages": chat})
    return rows


def alpaca_csv() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["instruction", "input", "output"])
    writer.writerows((question, "", answer) for question, answer in general_zh.ROWS)
    return buffer.getvalue()


def main(out: Path = HERE) -> None:
    files = {
        "identity_alpaca.json": (json.dumps(alpaca(), ensure_ascii=False, indent=1) + "\n", len(alpaca())),
        "everyday_sharegpt.json": (json.dumps(sharegpt(), ensure_ascii=False, indent=1) + "\n", len(sharegpt())),
        "science_ultrachat.jsonl": (_jsonl(ultrachat()), len(ultrachat())),
        "coding_messages.jsonl": (_jsonl(messages()), len(messages())),
        "general_zh.csv": (alpaca_csv(), len(general_zh.ROWS)),
    }
    for name, (text, rows) in files.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"{name}: {rows} conversations")


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
