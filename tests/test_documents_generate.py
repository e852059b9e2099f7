"""Training data from documents: grounded Q/A pairs keep their chunk ids, the self-check drops answers
that are not in their chunk, the result is an ordinary dataset version, and Train fine-tunes on it."""

from __future__ import annotations

import json
import re

import pytest

from core import inference
from core.documents import generate, open_collection
from core.evaluate.contenders import describe_choice
from tests.train_helpers import FakeReporter, tiny_settings

OFF_TOPIC = "Bananas are yellow and grow in warm places."


class FakeWriter:
    """Asks a fixed question; answers with the passage's first sentence, except every third answer,
    which is off topic (what the self-check must catch)."""

    context_length = 4096

    def __init__(self):
        self.answers = 0

    def count_tokens(self, messages):
        return sum(len(m["content"]) for m in messages) // 4

    def stream(self, messages, settings, stop=None, usage=None):
        prompt = messages[-1]["content"]
        if prompt.startswith(("Read the passage", "阅读下面的段落")):
            yield "Question: What does this passage say about the rules here?" if "Passage" in prompt else "这段话规定了什么？"
            return
        self.answers += 1
        passage = re.split(r"\n\n(?:Question: |问题：)", re.split(r"Passage:\n|段落：\n", prompt, maxsplit=1)[1])[0]
        yield OFF_TOPIC if self.answers % 3 == 0 else re.split(r"(?<=[.。；;])", passage.strip(), maxsplit=1)[0]


@pytest.fixture
def collection(shipped_documents):
    return open_collection(shipped_documents, "shipped")


def test_pairs_keep_their_chunk_and_the_self_check_drops_answers_not_in_it(collection):
    pairs, dropped = generate.generate_pairs(FakeWriter(), collection, count=9)

    assert len(pairs) == 6 and dict(dropped) == {"not_grounded": 3}
    assert all(pair["messages"][1]["content"] != OFF_TOPIC for pair in pairs)
    for pair in pairs:
        collection_id, index = pair["chunk_id"].split("#")
        chunk = collection.chunks[int(index)]
        assert collection_id == collection.id and pair["source"] == chunk["source"]
        assert pair["messages"][1]["content"] in chunk["text"]
    assert generate.support(OFF_TOPIC, pairs[0]["messages"][1]["content"]) < generate.MIN_SUPPORT
    assert len({pair["source"] for pair in pairs}) >= 3  # spread over the documents, not the first one


def test_the_job_saves_a_dataset_version_that_trains(shipped_documents, tiny_model_dir, monkeypatch, tmp_path):
    from core.data import load_split
    from core.train import job

    monkeypatch.setattr(inference, "open_backend", lambda choice, ws, progress=None: FakeWriter())
    reporter = FakeReporter(tmp_path / "generate-job")
    reporter.folder.mkdir()
    reporter.params = {"collection": "shipped", "model": describe_choice(inference.default_choice()), "count": 12,
                       "name": "law questions", "seed": 0, "workspace": str(shipped_documents.root)}

    result = generate.run(reporter)

    folder = shipped_documents.datasets / result["dataset"].rsplit("/", 1)[-1]
    assert folder.name.startswith("law-questions-") and result["kept"] == 8 and result["dropped"] == {"not_grounded": 4}
    assert result["message"].endswith("8 examples kept; dropped 4 answer not found in its chunk.")
    records = load_split(folder, "train") + load_split(folder, "validation")
    assert len(records) == 8 and all(record["chunk_id"].startswith("shipped-") for record in records)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["generated"]["kept"] == 8 and set(report["sources"]) == {r["source"] for r in records}
    assert set(report["sources"]) <= {"us-constitution.md", "bill-of-rights.md", "apache-license-2.0.txt",
                                      "consumer-rights-law.md", "labour-law.md"}

    run_dir = shipped_documents.runs / "from-documents"
    run_dir.mkdir()
    trainer = FakeReporter(run_dir)
    trainer.params = {"settings": tiny_settings(tiny_model_dir, folder).to_dict(),
                      "workspace": str(shipped_documents.root), "eta_s": 1.0}
    trained = job.run(trainer)
    assert trained["step"] == 2 and (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert [event["step"] for event in trainer.events if "loss" in event] == [1, 2]


def test_nothing_passing_the_self_check_is_a_clear_failure(shipped_documents, monkeypatch, tmp_path):
    from core.errors import BadInputError

    class OffTopic(FakeWriter):
        def stream(self, messages, settings, stop=None, usage=None):
            yield "Question: Which fruit is yellow?" if messages[-1]["content"].startswith("Read") else OFF_TOPIC

    monkeypatch.setattr(inference, "open_backend", lambda choice, ws, progress=None: OffTopic())
    reporter = FakeReporter(tmp_path)
    reporter.params = {"collection": "shipped", "model": describe_choice(inference.default_choice()), "count": 2,
                       "workspace": str(shipped_documents.root)}
    with pytest.raises(BadInputError, match=r"No example passed the self-check \(2 answer not found in its chunk\)"):
        generate.run(reporter)
