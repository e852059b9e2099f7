"""Data stage: bad input is refused clearly or counted, and originals stay as they were."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from core.data import PrepareOptions, prepare
from core.errors import BadInputError

FAST = PrepareOptions(model="", near_dup_threshold=0, validation_share=0)
GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def lines(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def test_broken_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(lines(GOOD, GOOD, '{"messages": [ {"role": "user"'), encoding="utf-8")
    with pytest.raises(BadInputError, match=r"chats\.jsonl line 3: broken JSON"):
        prepare([path], FAST)


def test_broken_json_array_names_the_line(tmp_path):
    path = tmp_path / "alpaca.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]',
                    encoding="utf-8")
    with pytest.raises(BadInputError, match=r"alpaca\.json line 3: broken JSON"):
        prepare([path], FAST)


def test_mixed_types_give_a_friendly_reason_not_an_arrow_trace(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(lines({"instruction": "Count", "output": 3}, {"instruction": "Say hi", "output": "hi"},
                          {"instruction": ["not", "text"], "output": "x"}), encoding="utf-8")
    prepared = prepare([path], FAST)
    assert prepared.report["kept"] == 1 and prepared.report["dropped"] == {"bad_field_type": 2}
    details = [e["detail"] for e in prepared.report["examples"]["bad_field_type"]]
    assert details == ["field `output` is a number, expected text", "field `instruction` is a list, expected text"]
    assert [e["line"] for e in prepared.report["examples"]["bad_field_type"]] == [1, 3]


def test_per_reason_counts_and_abort_above_drop_share(tmp_path):
    bad_role = {"conversations": [{"from": "narrator", "value": "x"}, {"from": "gpt", "value": "y"}]}
    no_answer = {"conversations": [{"from": "human", "value": "Hi?"}]}
    empty = {"conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": ""}]}
    good = [{"conversations": [{"from": "human", "value": f"Q{i}"}, {"from": "gpt", "value": f"A{i}"}]}
            for i in range(3)]
    path = tmp_path / "sg.jsonl"
    path.write_text(lines(*good, bad_role, no_answer, empty), encoding="utf-8")
    prepared = prepare([path], FAST)
    assert prepared.report["dropped"] == {"unknown_role": 1, "no_assistant": 2}
    with pytest.raises(BadInputError, match=r"3 of 6 rows \(50%\) would be dropped, above the 40% limit"):
        prepare([path], PrepareOptions(model="", near_dup_threshold=0, max_drop_share=0.4))


def test_bom_gives_the_same_result(tmp_path):
    plain, bom = tmp_path / "plain.jsonl", tmp_path / "bom.jsonl"
    plain.write_text(lines(GOOD), encoding="utf-8")
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert prepare([plain], FAST).records[0]["messages"] == prepare([bom], FAST).records[0]["messages"]
    csv_bom = tmp_path / "bom.csv"
    csv_bom.write_bytes("\ufeffinstruction,output\nHi,Hello\n".encode("utf-8"))
    assert prepare([csv_bom], FAST).report["kept"] == 1


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(lines(GOOD).encode() + '{"instruction": "café", "output": "ok"}\n'.encode("latin-1"))
    with pytest.raises(BadInputError, match=r"latin1\.jsonl line 2: not UTF-8 text \(byte 0xe9\)"):
        prepare([path], FAST)


def test_oversized_file_record_and_row_count_refused_with_the_limit(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(lines(GOOD, {"instruction": "x" * 5000, "output": "y"}), encoding="utf-8")
    with pytest.raises(BadInputError, match=r"big\.jsonl line 2: the record is too large .*limit is 1,000"):
        prepare([path], PrepareOptions(model="", max_record_chars=1000))
    with pytest.raises(BadInputError, match=r"the limit is 1 rows|limit is 1\b"):
        prepare([path], PrepareOptions(model="", max_rows=1))
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as handle:  # sparse: 2 MB on paper, nothing read
        handle.truncate(2 * 1024 * 1024)
    with pytest.raises(BadInputError, match=r"huge\.jsonl is 2 MB; the limit is 1 MB"):
        prepare([huge], PrepareOptions(model="", max_file_mb=1))


def test_duplicates_removed_deterministically_and_counted(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"Q{i % 4}"}, {"role": "assistant", "content": "A"}]}
            for i in range(12)]
    path = tmp_path / "dups.jsonl"
    path.write_text(lines(*rows), encoding="utf-8")
    first, second = prepare([path], PrepareOptions(model="")), prepare([path], PrepareOptions(model=""))
    assert first.report["duplicates"] == 8 and first.report["kept"] == 4
    assert first.records == second.records


def test_originals_are_never_modified(tmp_path):
    path = tmp_path / "orig.jsonl"
    path.write_text(lines(GOOD, GOOD, {"conversations": [{"from": "gpt", "value": " <b>x</b> "}]}), encoding="utf-8")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    prepare([path], PrepareOptions(model="", html_to_text=True))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        prepare([tmp_path / "nope.json"], FAST)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BadInputError, match="unsupported file type .txt"):
        prepare([tmp_path / "notes.txt"], FAST)


def _cli(*argv, peak: bool = False):
    """`python -m core.data` in a fresh process; with `peak`, it also reports its own peak RSS in bytes
    (VmHWM: unlike ru_maxrss, it starts afresh at exec, so the test process's own size does not count)."""
    import subprocess
    import sys

    from tests.browser import ROOT

    report = ("import atexit, re\natexit.register(lambda: print('PEAK', 1024 * int(re.search(r'VmHWM:\\s*(\\d+)', "
              "open('/proc/self/status').read()).group(1)), file=sys.stderr))\n") if peak else ""
    code = f"import sys\n{report}from core.data.__main__ import main\nsys.exit(main())\n"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_bracket_bombs_and_deep_nesting_name_the_file_and_line(tmp_path):
    bomb = tmp_path / "bomb.json"
    bomb.write_text("[" * 100_000)
    deep = tmp_path / "deep.jsonl"
    deep.write_text(lines(GOOD, GOOD, '{"messages": ' + "[" * 50_000 + "]" * 50_000 + "}"))
    nested_array = tmp_path / "nested.json"
    nested_array.write_text("[\n" + json.dumps({"instruction": "a", "output": "b"}) + ",\n" + "[" * 50_000 + "\n]")
    for path, line in ((bomb, 1), (deep, 3), (nested_array, 3)):
        result = _cli("prepare", str(path), "--out", str(tmp_path / "out"), "--model", "")
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-1500:]
        assert f"{path.name} line {line}: the JSON is nested too deeply to read" in result.stderr


@pytest.mark.parametrize("shape", ["jsonl", "array"])
def test_millions_of_rows_are_refused_without_holding_them(tmp_path, shape):
    """Over the row limit: refused before any row is kept, so memory stays far below the file's size."""
    path = tmp_path / f"rows.{'jsonl' if shape == 'jsonl' else 'json'}"
    row = json.dumps({"instruction": "q", "output": "a"}) if shape == "jsonl" else '{"a":1}'
    with open(path, "w") as handle:  # in slices: the test process stays small too
        for _ in range(25):
            handle.write(f"{row}\n" * 100_000 if shape == "jsonl" else ("[" if handle.tell() == 0 else ",")
                         + ",".join([row] * 100_000))
        handle.write("" if shape == "jsonl" else "]")
    size = path.stat().st_size
    result = _cli("prepare", str(path), "--out", str(tmp_path / "out"), "--model", "", peak=True)
    assert result.returncode == 1 and re.search(r"has (more than )?2,\d{3},\d{3} rows; the limit is 2,000,000",
                                                result.stderr)
    peak = int(result.stderr.split("PEAK ")[1].split()[0])
    assert peak < 10 * size, f"peak RSS {peak / 2**20:.0f} MB for a {size / 2**20:.0f} MB file"
