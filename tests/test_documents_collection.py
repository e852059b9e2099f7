"""Document collections: every format read with its place, bad files listed with the reason, token-aware
chunks, BM25 in English and Chinese, an index that reloads without rebuilding, and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.documents import CollectionSettings, RetrievalSettings, build_collection, open_collection
from core.documents import store
from core.documents.chunking import count_tokens
from tests.document_files import ROOT, SHIPPED, make_docx, make_pdf

SMALL = CollectionSettings(chunk_tokens=64, overlap_tokens=16)


@pytest.fixture(scope="module")
def tokenizer():
    from core.data import lengths

    return lengths.load("default")


def every_format(folder):
    make_pdf(folder / "harbour.pdf", ["The harbour opens at nine.", "", "Ferries to Kestrel Island leave at noon."])
    make_docx(folder / "guide.docx", [(0, "Harbour guide", ["Welcome aboard."]),
                                      (1, "Fees", ["Mooring costs four silver coins a night."])])
    (folder / "page.html").write_text("<html><body><h1>Lighthouse</h1><p>The lamp is lit at dusk.</p>"
                                      "<script>var hidden = 1;</script></body></html>", encoding="utf-8")
    (folder / "notes.md").write_text("# Notes\n\n## Tides\n\nHigh tide comes twice a day.\n\n```\n# not a heading\n```\n",
                                     encoding="utf-8")
    (folder / "plain.txt").write_text("The keeper's cat is called Marlowe.", encoding="utf-8")
    (folder / "faq.jsonl").write_text(json.dumps({"text": "Tickets are sold on the quay.", "title": "Tickets"}) + "\n",
                                      encoding="utf-8")
    return [folder / name for name in ("harbour.pdf", "guide.docx", "page.html", "notes.md", "plain.txt", "faq.jsonl")]


def test_every_format_is_read_with_its_source_page_and_heading(workspace, tmp_path):
    folder = build_collection(workspace, every_format(tmp_path), "Harbour notes", SMALL)

    assert folder.parent == workspace.documents and folder.name.startswith("harbour-notes-")
    chunks = [json.loads(line) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]

    def where(text):
        [chunk] = [chunk for chunk in chunks if text in chunk["text"]]
        return chunk["source"], chunk["page"], chunk["heading"]

    assert where("Ferries to Kestrel Island leave at noon.") == ("harbour.pdf", 3, "")
    assert where("Mooring costs four silver coins a night.") == ("guide.docx", None, "Harbour guide › Fees")
    assert where("The lamp is lit at dusk.") == ("page.html", None, "Lighthouse")
    assert where("High tide comes twice a day.") == ("notes.md", None, "Notes › Tides")
    assert where("Tickets are sold on the quay.") == ("faq.jsonl", None, "Tickets")
    assert where("Marlowe") == ("plain.txt", None, "")
    assert not any("hidden" in chunk["text"] for chunk in chunks)  # scripts are not text
    assert any("# not a heading" in chunk["text"] and chunk["heading"] == "Notes › Tides" for chunk in chunks)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert (report["files"], report["pages"], report["chunks"]) == (6, 3, len(chunks))
    assert report["tokens"] == sum(chunk["tokens"] for chunk in chunks) and report["skipped"] == []
    pdf_row = next(row for row in report["per_file"] if row["file"] == "harbour.pdf")
    assert pdf_row["note"] == "1 of 3 pages have no text layer (scanned?)"
    assert "4 of them fill 6% of its 4,096-token context" in (folder / "report.md").read_text(encoding="utf-8")


def test_the_same_files_again_return_the_same_version_without_rebuilding(workspace, tmp_path, monkeypatch):
    files = every_format(tmp_path)
    first = build_collection(workspace, files, "harbour", SMALL)
    monkeypatch.setattr(store, "read_document", lambda *a: pytest.fail("rebuilt an existing collection"))
    assert build_collection(workspace, files, "harbour", SMALL) == first
    monkeypatch.undo()
    (tmp_path / "plain.txt").write_text("The keeper's cat is called Tybalt.", encoding="utf-8")
    assert build_collection(workspace, files, "harbour", SMALL) != first  # new content, new version


def test_unreadable_files_are_listed_with_the_reason_and_nothing_else_is_lost(workspace, tmp_path):
    good = tmp_path / "good.md"
    good.write_text("# Good\n\nThe ferry leaves at noon.\n", encoding="utf-8")
    bad = {
        "locked.pdf": make_pdf(tmp_path / "locked.pdf", ["Secret plans."], encrypt="hunter2"),
        "scan.pdf": make_pdf(tmp_path / "scan.pdf", ["", ""]),
        "broken.pdf": tmp_path / "broken.pdf", "empty.txt": tmp_path / "empty.txt",
        "photo.txt": tmp_path / "photo.txt", "broken.docx": tmp_path / "broken.docx",
        "sheet.xlsx": tmp_path / "sheet.xlsx"}
    bad["broken.pdf"].write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    bad["empty.txt"].write_bytes(b"")
    bad["photo.txt"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    bad["broken.docx"].write_bytes(b"PK\x03\x04 not a whole zip")
    bad["sheet.xlsx"].write_bytes(b"PK")

    folder = build_collection(workspace, [good, *bad.values()], "mixed", SMALL)

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    reasons = {item["file"]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == set(bad) and report["files"] == 1
    assert "encrypted, it needs a password" in reasons["locked.pdf"]
    assert "no text layer on any of its 2 pages" in reasons["scan.pdf"]
    assert "corrupt or not a PDF" in reasons["broken.pdf"]
    assert "empty file (0 bytes)" in reasons["empty.txt"]
    assert "binary data, not text" in reasons["photo.txt"]
    assert "corrupt or not a DOCX" in reasons["broken.docx"]
    assert "unsupported type '.xlsx'" in reasons["sheet.xlsx"]
    assert "The ferry leaves at noon." in (folder / "chunks.jsonl").read_text(encoding="utf-8")
    assert "**Skipped 7 files:**" in (folder / "report.md").read_text(encoding="utf-8")


def test_a_200_mb_text_file_is_refused_by_the_default_limit_before_it_is_read(workspace, tmp_path, monkeypatch):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: 200 MB by size, no disk used
    small = tmp_path / "small.txt"
    small.write_text("Still here.", encoding="utf-8")
    reads = []
    original = type(huge).read_bytes
    monkeypatch.setattr(type(huge), "read_bytes", lambda self: reads.append(self.name) or original(self))

    folder = build_collection(workspace, [huge, small], "big", SMALL)

    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["skipped"] == [{"file": "huge.txt", "reason": "huge.txt: 200 MB, above the 100 MB limit per file. "
                                  "Split it into smaller files, or raise the limit (max_file_mb) if this machine "
                                  "has the memory."}]
    assert "huge.txt" not in reads and report["files"] == 1


def test_a_lowered_limit_applies_and_nothing_readable_is_a_clear_error(workspace, tmp_path):
    from core.errors import BadInputError

    two_mb = tmp_path / "two.txt"
    two_mb.write_text("word " * (2 * 2**20 // 5 + 10), encoding="utf-8")
    with pytest.raises(BadInputError, match=r"None of the 1 files could be read: two.txt: 2 MB, above the 1 MB limit"):
        build_collection(workspace, [two_mb], "capped", CollectionSettings(max_file_mb=1))


def test_chunks_fit_the_model_tokenizer_overlap_and_keep_their_headings(workspace, tokenizer):
    folder = build_collection(workspace, [SHIPPED / "en" / "us-constitution.md"], "constitution", SMALL)
    chunks = open_collection(workspace, "constitution").chunks

    assert all(count_tokens(tokenizer, [chunk["text"]])[0] == chunk["tokens"] <= 64 for chunk in chunks)
    assert all(chunk["text"].startswith(chunk["heading"] + "\n") for chunk in chunks if chunk["heading"])
    article_one = [c for c in chunks if c["heading"].endswith("Article. I.")]
    assert len(article_one) > 20
    bodies = [chunk["text"].split("\n", 1)[1] for chunk in article_one]
    shared = [next((line for line in b.splitlines() if line.strip()), "") in a for a, b in zip(bodies, bodies[1:])]
    assert sum(shared) >= len(shared) // 2  # most neighbours share the sentence at the border
    assert json.loads((folder / "collection.json").read_text())["settings"]["chunk_tokens"] == 64


@pytest.fixture
def shipped(shipped_documents):
    return shipped_documents


def test_bm25_finds_english_and_chinese_passages_and_nothing_for_an_unrelated_question(shipped):
    collection = open_collection(shipped, "shipped")

    hits = collection.search("Can members of Congress be arrested on their way to a session?")
    assert any("privileged from Arrest" in hit.chunk["text"] for hit in hits[:2])
    assert hits[0].chunk["source"] == "us-constitution.md" and "Article. I." in hits[0].where
    [top, *_] = collection.search("网上买的东西，收到后几天内可以无理由退货？")
    assert top.chunk["source"] == "consumer-rights-law.md" and "七日内退货" in top.chunk["text"]
    assert "第三章" in top.where
    assert collection.search("How do I bake sourdough bread at home?") == []
    assert len(collection.search("labour contract probation", RetrievalSettings(top_k=2))) <= 2


def test_the_saved_index_reloads_without_rebuilding(shipped, monkeypatch):
    before = [hit.chunk["index"] for hit in open_collection(shipped, "shipped").search("用人单位 试用期 最长")]
    store._open.cache_clear()
    monkeypatch.setattr(store.Bm25Index, "build", lambda texts: pytest.fail("the index was rebuilt"))
    after = open_collection(shipped, "shipped").search("用人单位 试用期 最长")
    assert [hit.chunk["index"] for hit in after] == before and "六个月" in after[0].chunk["text"]


@pytest.mark.slow
def test_the_command_line_adds_and_searches(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workspace = tmp_path / "cli_ws"
    add = subprocess.run([sys.executable, "-m", "core.documents", "--workspace", str(workspace), "add",
                          str(SHIPPED / "zh" / "labour-law.md"), str(tmp_path / "missing.pdf"), "--name", "labour"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert add.returncode == 0, add.stderr
    assert "**1 files · 0 pages ·" in add.stdout and "missing.pdf: not found" in add.stdout
    search = subprocess.run([sys.executable, "-m", "core.documents", "--workspace", str(workspace), "search", "labour",
                             "女职工的产假有多少天？"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert search.returncode == 0, search.stderr
    assert search.stdout.startswith("[1] labour-law.md · 中华人民共和国劳动法 › 第七章") and "九十天" in search.stdout
    unknown = subprocess.run([sys.executable, "-m", "core.documents", "--workspace", str(workspace), "search", "nope",
                              "x"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert unknown.returncode == 1 and "There is no document collection 'nope'. Collections here: labour." in unknown.stderr


@pytest.fixture(scope="module")
def tiny_embedder(tmp_path_factory, tiny_model_dir):
    """A sentence-transformers model folder (the tiny Llama, mean-pooled), saved as safetensors."""
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(tiny_model_dir), device="cpu")  # a plain model folder gets mean pooling
    folder = tmp_path_factory.mktemp("tiny_embedder")
    model.save(str(folder), safe_serialization=True)
    return folder


def test_dense_and_hybrid_search_with_a_local_sentence_transformers_model(workspace, tmp_path, tiny_embedder):
    settings = CollectionSettings(chunk_tokens=64, overlap_tokens=0, embedding_model=str(tiny_embedder))
    folder = build_collection(workspace, every_format(tmp_path), "harbour", settings)
    assert (folder / "index" / "embeddings.npy").is_file()
    collection = open_collection(workspace, "harbour")
    target = next(chunk for chunk in collection.chunks if "Marlowe" in chunk["text"])

    # The same text embeds to the same vector, so even a random tiny model ranks it first by meaning.
    [top, *_] = collection.search(target["text"], RetrievalSettings(mode="dense", min_cosine=0.99))
    assert top.chunk == target and top.cosine == pytest.approx(1.0, abs=1e-4)
    hybrid = collection.search("keeper cat Marlowe", RetrievalSettings(mode="auto"))
    assert collection.mode(RetrievalSettings()) == "hybrid" and hybrid[0].chunk == target
    assert hybrid[0].score >= 1 / 61 and hybrid[0].bm25 > 0  # fused: first by BM25, plus its dense rank
    store._open.cache_clear()
    again = open_collection(workspace, "harbour").search(target["text"], RetrievalSettings(mode="dense", min_cosine=0.99))
    assert again[0].chunk == target


def test_dense_search_on_a_lexical_collection_says_how_to_get_it(shipped):
    from core.errors import BadInputError

    with pytest.raises(BadInputError, match="has no embeddings, so it cannot search by meaning"):
        open_collection(shipped, "shipped").search("anything", RetrievalSettings(mode="dense"))
