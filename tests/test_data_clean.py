"""Data stage: every cleaning rule, dedupe, length filter, caps and the seeded stratified split."""

from __future__ import annotations

import json
import unicodedata

import pytest

from core.data import PrepareOptions, prepare
from core.data.clean import clean
from core.data.formats import RowError
from core.data.pipeline import split

FAST = PrepareOptions(model="", near_dup_threshold=0, validation_share=0)


def turns(*pairs):
    return [{"role": role, "content": content} for role, content in pairs]


def options(**changes):
    return PrepareOptions(**{**dict(model="", near_dup_threshold=0, validation_share=0), **changes})


def test_nfc_and_trim_switchable():
    decomposed = "Cafe\u0301 "
    cleaned, _ = clean(turns(("user", decomposed), ("assistant", " ok")), options())
    assert cleaned[0]["content"] == "Café" and unicodedata.is_normalized("NFC", cleaned[0]["content"])
    raw, _ = clean(turns(("user", decomposed), ("assistant", "ok")), options(nfc=False))
    assert raw[0]["content"] == decomposed


def test_html_to_text_only_when_asked():
    html = "<div class=\"markdown\"><p>Use <code>ls</code> &amp; <b>cd</b></p><p>Done</p></div>"
    cleaned, _ = clean(turns(("user", "How?"), ("assistant", html)), options(html_to_text=True))
    assert cleaned[1]["content"] == "Use ls & cd\nDone"
    kept, _ = clean(turns(("user", "How?"), ("assistant", html)), options())
    assert kept[1]["content"] == html


def test_empty_turns_removed_or_conversation_dropped():
    conversation = turns(("user", "Hi"), ("assistant", "  "), ("user", "Hello?"), ("assistant", "Hey"))
    cleaned, fixes = clean(conversation, options())
    assert cleaned == turns(("user", "Hi\n\nHello?"), ("assistant", "Hey"))
    assert fixes == ["empty_turns_removed", "same_role_merged"]
    with pytest.raises(RowError) as error:
        clean(conversation, options(drop_empty_turns=False))
    assert error.value.reason == "empty_turn"


def test_same_role_merge_or_drop():
    conversation = turns(("user", "Part one"), ("user", "part two"), ("assistant", "Answer"))
    assert clean(conversation, options())[0][0]["content"] == "Part one\n\npart two"
    with pytest.raises(RowError, match="two user turns"):
        clean(conversation, options(same_role="drop"))


def test_ends_trimmed_or_dropped():
    conversation = turns(("system", "S"), ("assistant", "Hello, how can I help?"), ("user", "Hi"),
                         ("assistant", "Hi!"), ("user", "unanswered"))
    cleaned, fixes = clean(conversation, options())
    assert [t["role"] for t in cleaned] == ["system", "user", "assistant"]
    assert fixes == ["leading_turns_trimmed", "trailing_turns_trimmed"]
    with pytest.raises(RowError) as error:
        clean(conversation, options(ends="drop"))
    assert error.value.reason == "starts_with_assistant"


@pytest.mark.parametrize("conversation,reason", [
    (turns(("user", "Hi"), ("user", "Anyone?")), "no_assistant"),
    (turns(("user", "Hi"), ("tool", "{}"), ("assistant", "ok")), "not_alternating"),
    (turns(("user", "Hi"), ("system", "late"), ("assistant", "ok")), "not_alternating"),
    (turns(("user", "Who are you?"), ("assistant", "I'm {{nickname}}.")), "unfilled_placeholder"),
])
def test_unrepairable_conversations_dropped_with_reason(conversation, reason):
    with pytest.raises(RowError) as error:
        clean(conversation, options())
    assert error.value.reason == reason


def test_placeholders_filled_with_chosen_values():
    conversation = turns(("user", "Who made you?"), ("assistant", "I'm {{name}}, made by {{ author }}."))
    assert clean(conversation, options())[0][1]["content"] == "I'm Kestrel, made by Chatsmith."
    custom = options(placeholders={"name": "Wren", "author": "Ada"})
    assert clean(conversation, custom)[0][1]["content"] == "I'm Wren, made by Ada."


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def chat(user, assistant):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def test_exact_dedup_ignores_case_and_spaces_and_keeps_first(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [chat("What is 2+2?", "4"), chat("what is  2+2?", "4"),
                                             chat("What is 3+3?", "6")])
    prepared = prepare([path], FAST)
    assert [r["messages"][0]["content"] for r in prepared.records] == ["What is 2+2?", "What is 3+3?"]
    assert prepared.report["duplicates"] == 1
    assert len(prepare([path], options(exact_dedup=False)).records) == 3


def test_near_dedup_follows_threshold(tmp_path):
    answer = ("Bring a small pan of water to a rolling boil, lower the egg in gently with a spoon and boil "
              "it for six minutes, then move it to a bowl of cold water for a minute so the white sets while "
              "the yolk stays runny. Tap the shell all over, peel it under running water, season it with salt "
              "and pepper and eat it while it is still warm, with toast cut into strips for dipping.")
    path = write_jsonl(tmp_path / "n.jsonl", [chat("How do I make a soft-boiled egg?", answer),
                                             chat("How do I make a soft boiled egg?", answer.replace("six", "6")),
                                             chat("What is the boiling point of water?", "100 °C at sea level.")])
    strict = prepare([path], options(near_dup_threshold=0.8))
    assert strict.report["near_duplicates"] == 1 and strict.report["kept"] == 2
    assert prepare([path], options(near_dup_threshold=0)).report["kept"] == 3
    assert prepare([path], options(near_dup_threshold=0.99)).report["kept"] == 3


@pytest.mark.parametrize("threshold, bands", [(0.3, (32, 2)), (0.5, (21, 3)), (0.6, (16, 4)), (0.75, (10, 6)),
                                              (0.8, (9, 7)), (0.85, (7, 9)), (0.9, (5, 12)), (0.95, (3, 19))])
def test_lsh_bands_are_the_ones_datasketch_chose(threshold, bands):
    """The (bands, rows) datasketch 2.0's MinHashLSH picked for 64 permutations, weights 0.1 / 0.9, recorded
    when the app stopped depending on it: near-duplicate results stay what they were."""
    from core.data.dedupe import lsh_bands

    assert lsh_bands(threshold, 64) == bands


def test_length_filter_uses_the_models_tokenizer(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "l.jsonl", [chat("Hi", "Hello!"), chat("Tell me a story", "word " * 300)])
    prepared = prepare([path], options(model=str(tiny_model_dir), max_tokens=100))
    assert prepared.report["kept"] == 1 and prepared.report["dropped"] == {"too_long": 1}
    length = prepared.report["length"]
    assert length["unit"] == f"tokens ({tiny_model_dir.name})" and length["max"] > 300
    assert sum(length["histogram"]["counts"]) == 2 and length["histogram"]["cutoff"] == 100


def test_caps_mix_sources_and_keep_source_names(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [chat(f"Question {i}", f"Answer {i}") for i in range(10)])
    b = write_jsonl(tmp_path / "b.jsonl", [chat(f"Frage {i}", f"Antwort {i}") for i in range(10)])
    prepared = prepare([a, b], options(caps={"a": 3}))
    assert prepared.report["sources"] == {"a": 3, "b": 10}
    assert prepared.report["dropped"] == {"over_cap": 7}
    assert prepare([a, b], options(caps={"a": 3})).records == prepared.records


def test_split_is_seeded_and_stratified_by_source():
    records = [{"id": str(i), "source": "big" if i < 80 else "small", "messages": []} for i in range(100)]
    train, validation = split(records, 0.1, seed=7)
    assert [r["source"] for r in validation].count("big") == 8
    assert [r["source"] for r in validation].count("small") == 2
    assert split(records, 0.1, seed=7) == (train, validation)
    assert split(records, 0.1, seed=8)[1] != validation
