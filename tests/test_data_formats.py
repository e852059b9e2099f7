"""Data stage: each input format and file type becomes canonical records, with the evidence shown."""

from __future__ import annotations

import json

import pytest

from core.data import ColumnMapping, PrepareOptions, Source, inspect, prepare
from core.errors import BadInputError

FAST = PrepareOptions(model="", near_dup_threshold=0, validation_share=0)


def write_json(path, value):
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def only(prepared):
    assert len(prepared.records) == 1, prepared.report
    return prepared.records[0]["messages"]


def test_alpaca_with_system_input_and_history(tmp_path):
    path = write_json(tmp_path / "a.json", [{
        "instruction": "Translate to French", "input": "Good morning", "output": "Bonjour",
        "system": "You translate.", "history": [["Hi", "Hello! How can I help?"]]}])
    assert only(prepare([path], FAST)) == [
        {"role": "system", "content": "You translate."},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Translate to French\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"}]
    assert "Alpaca" in inspect(path).evidence


def test_sharegpt_role_names_tool_turns_and_tools_field(tmp_path):
    tools = '[{"name": "get_time", "parameters": {}}]'
    path = write_json(tmp_path / "s.json", [{
        "conversations": [
            {"from": "system", "value": "Be brief."}, {"from": "human", "value": "What time is it?"},
            {"from": "function_call", "value": '{"name": "get_time", "arguments": {}}'},
            {"from": "observation", "value": '{"time": "10:00"}'},
            {"from": "gpt", "value": "It is 10:00."}, {"from": "user", "value": "Thanks"},
            {"from": "chatgpt", "value": "You're welcome."}, {"from": "user", "value": "Bye"},
            {"from": "bing", "value": "Goodbye!"}],
        "tools": tools}])
    record = prepare([path], FAST).records[0]
    assert [m["role"] for m in record["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "user", "assistant", "user", "assistant"]
    assert record["tools"] == tools and record["source"] == "s"
    assert len(record["id"]) == 16


def test_ultrachat_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [{"id": "0", "data": ["Hi", "Hello!", "How are you?", "Fine."]}])
    assert [m["role"] for m in only(prepare([path], FAST))] == ["user", "assistant", "user", "assistant"]
    assert inspect(path).format == "ultrachat"


def test_messages_with_text_parts_and_prompt_id(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{
        "prompt": "Name a colour", "prompt_id": "abc",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Name a colour"}]},
                     {"role": "assistant", "content": "Blue."}]}])
    assert only(prepare([path], FAST)) == [{"role": "user", "content": "Name a colour"},
                                           {"role": "assistant", "content": "Blue."}]


def test_csv_parquet_and_datasets_folder(tmp_path):
    import datasets

    rows = [{"instruction": "Say hi", "input": "", "output": "Hi!"},
            {"instruction": "Say bye", "input": "", "output": "Bye!"}]
    (tmp_path / "a.csv").write_text("instruction,input,output\nSay hi,,Hi!\n\"Say\nbye\",,Bye!\n", encoding="utf-8")
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "a.parquet"))
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "a.csv", tmp_path / "a.parquet", tmp_path / "saved"):
        assert len(prepare([path], FAST).records) == 2, path


def test_json_object_holding_records(tmp_path):
    path = write_json(tmp_path / "o.json", {"version": 1, "data": [
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}]})
    assert only(prepare([path], FAST))[1]["content"] == "4"


def test_chat_saved_examples_file_reads_like_any_other(workspace):
    path = write_jsonl(workspace.uploads / "chat-examples.jsonl", [
        {"id": "x", "source": "chat", "messages": [{"role": "user", "content": "Who are you?"},
                                                    {"role": "assistant", "content": "I'm Kestrel."}]}])
    assert prepare([path], FAST).records[0]["source"] == "chat-examples"


def test_undetected_file_names_fields_and_mapping_reads_it(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"question": "Capital of Japan?", "answer": "Tokyo.", "sys": "Be brief."}])
    detection = inspect(path)
    assert detection.format == "" and detection.fields == ["answer", "question", "sys"]
    with pytest.raises(BadInputError, match="odd.jsonl.*fields seen: `answer`"):
        prepare([path], FAST)
    mapping = ColumnMapping(instruction="question", output="answer", system="sys")
    assert only(prepare([Source(path, mapping=mapping)], FAST))[0] == {"role": "system", "content": "Be brief."}


def test_chat_mapping_with_custom_keys(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"turns": [{"speaker": "human", "text": "Hi"},
                                                         {"speaker": "gpt", "text": "Hello"}]}])
    mapping = ColumnMapping(messages="turns", role="speaker", content="text")
    assert only(prepare([Source(path, mapping=mapping)], FAST))[1] == {"role": "assistant", "content": "Hello"}


def test_mixed_formats_in_one_file_counted(tmp_path):
    rows = [{"instruction": f"Q{i}", "output": f"A{i}"} for i in range(5)]
    rows.append({"data": ["hi", "hello"]})
    path = write_jsonl(tmp_path / "mix.jsonl", rows)
    prepared = prepare([path], FAST)
    assert prepared.report["kept"] == 5 and prepared.report["dropped"] == {"other_format": 1}
    assert "mixed with 1 ultrachat" in prepared.report["files"][0]["evidence"]
    assert prepared.report["examples"]["other_format"][0]["line"] == 6
