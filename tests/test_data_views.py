"""Data tab's pure helpers: uploads kept aside, preview filtered by drop reason, plot, caps, template render."""

from __future__ import annotations

import json

import pytest

from core.data import ColumnMapping, PrepareOptions, prepare, views
from core.errors import BadInputError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_keep_upload_copies_and_never_overwrites_a_different_file(workspace, tmp_path):
    first, second = tmp_path / "a" / "data.jsonl", tmp_path / "b" / "data.jsonl"
    for path, text in ((first, "one\n"), (second, "two\n")):
        path.parent.mkdir()
        path.write_text(text)
    kept_first, kept_second = views.keep_upload(workspace, first), views.keep_upload(workspace, second)
    assert kept_first.read_text() == "one\n" and kept_second.read_text() == "two\n"
    assert kept_first != kept_second and views.keep_upload(workspace, first) == kept_first


def test_preview_filters_by_drop_reason_and_plots(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {"messages": [{"role": "user", "content": "Only a question"}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}])
    prepared = prepare([path], PrepareOptions(model="", validation_share=0))
    assert views.preview_choices(prepared) == ["kept", "duplicate", "no_assistant"]
    dropped = views.preview_items(prepared, "no_assistant")
    assert len(dropped) == 1 and dropped[0]["where"].startswith("p.jsonl:2")
    assert dropped[0]["messages"] == [{"role": "user", "content": "Only a question"}]
    assert views.preview_items(prepared, "kept")[0]["raw"]["source"] == "p"
    figure = views.histogram_figure(prepared.report)
    assert figure.axes[0].get_xlabel().startswith("length in estimated tokens")


def test_detect_files_and_mapping_only_for_undetected(tmp_path):
    known = write_jsonl(tmp_path / "known.jsonl", [{"instruction": "Q", "output": "A"}])
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"q": "Question?", "a": "Answer."}])
    table, fields, errors = views.detect_files([known, odd])
    assert "| known.jsonl | alpaca |" in table and "map columns" in table
    assert fields == ["a", "q"] and errors == []
    sources = views.sources_for([known, odd], ColumnMapping(instruction="q", output="a"))
    assert sources[0].mapping is None and sources[1].mapping.instruction == "q"
    assert prepare(sources, PrepareOptions(model="")).report["kept"] == 2


def test_parse_caps():
    assert views.parse_caps("alpaca=500, identity = 90\nchat=0") == {"alpaca": 500, "identity": 90, "chat": 0}
    with pytest.raises(BadInputError, match="SOURCE=NUMBER"):
        views.parse_caps("alpaca=lots")


def test_template_render_highlights_only_assistant_tokens(tiny_model_dir):
    runs = views.template_runs([{"role": "user", "content": "Who are you?"},
                                {"role": "assistant", "content": "I'm Kestrel."}], str(tiny_model_dir))
    trained = "".join(text for text, label in runs if label == "trained")
    assert "I'm Kestrel." in trained and "Who are you?" not in trained


def test_versions_table_lists_saved_datasets(workspace, tmp_path):
    from core.data import save_version

    assert views.versions_table(workspace) == ""
    path = write_jsonl(tmp_path / "v.jsonl", [{"messages": [{"role": "user", "content": f"Q{i}"},
                                                            {"role": "assistant", "content": f"A{i}"}]} for i in range(4)])
    folder = save_version(workspace, prepare([path], PrepareOptions(model="")), "Tiny set")
    table = views.versions_table(workspace)
    assert "| Tiny set | 3 / 1 |" in table and str(folder) in table
