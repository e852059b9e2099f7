"""Document collections: immutable folders `workspace/documents/<name>-<hash12>/`, built once, searched often.

Contract: `build_collection(workspace, files, name, settings)` reads every file it can, lists the others
with their reason, chunks, indexes and writes the folder atomically: `collection.json` (name, hash,
settings, counts), `chunks.jsonl` (one chunk a line: index, source, page, heading, text, tokens),
`index/bm25/` (bm25s files), `index/embeddings.npy` (only with an embedding model), `report.json` and
`report.md`. The hash covers the settings and every file's name and SHA-256, so adding the same files the
same way again returns the existing folder at once. `open_collection(workspace, name)` finds a collection by
name (the newest version), folder name or path, and loads it without rebuilding anything; collections are
cached per process, since a folder never changes. `Collection.search(query, settings)` returns only chunks
that clear the relevance threshold, best first: possibly none.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import atomic
from core.data.versions import slugify
from core.documents import dense, report
from core.documents.chunking import chunk_document
from core.documents.lexical import Bm25Index
from core.documents.parsing import UnreadableFile, read_document
from core.documents.settings import CollectionSettings, RetrievalSettings
from core.errors import BadInputError
from core.workspace import Workspace

COLLECTION_FILE = "collection.json"
FUSE_DEPTH = 20  # hybrid fuses each ranking's top 20: deeper ranks of one method add noise, not recall
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk and why it ranked where it did."""

    chunk: dict
    score: float
    """The ranking score: BM25, cosine, or the fused reciprocal-rank score in hybrid mode."""
    bm25: float
    cosine: float | None = None

    @property
    def where(self) -> str:
        """"file.pdf, page 3 · Article I" — what a citation shows."""
        page = f", page {self.chunk['page']}" if self.chunk.get("page") else ""
        heading = f" · {self.chunk['heading']}" if self.chunk.get("heading") else ""
        return f"{self.chunk['source']}{page}{heading}"


def build_collection(workspace: Workspace, files: list[str | Path], name: str,
                     settings: CollectionSettings = CollectionSettings(), progress: Progress | None = None) -> Path:
    report_progress = progress or (lambda fraction, message: None)
    files = [Path(f) for f in files]
    if not files:
        raise BadInputError("No files were given.", "Upload documents or type their paths.")
    started = time.perf_counter()
    digest = content_hash(files, settings)
    existing = [p for p in workspace.documents.glob(f"*-{digest}") if (p / COLLECTION_FILE).is_file()]
    if existing:
        return existing[0]
    documents, skipped = [], []
    for number, path in enumerate(files):
        report_progress(0.4 * number / len(files), f"Reading {path.name}…")
        try:
            documents.append(read_document(path, settings.max_file_mb * 2**20))
        except UnreadableFile as error:
            skipped.append({"file": path.name, "reason": str(error)})
    if not documents:
        reasons = "; ".join(item["reason"] for item in skipped[:3])
        raise BadInputError(f"None of the {len(files)} files could be read: {reasons}", "")
    report_progress(0.4, "Chunking in the model's tokenizer…")
    chunks = _chunk_all(documents, settings)
    report_progress(0.6, "Indexing (BM25)…")
    index = Bm25Index.build([chunk["text"] for chunk in chunks])
    vectors = None
    if settings.embedding_model:
        report_progress(0.7, f"Embedding {len(chunks)} chunks with {settings.embedding_model}…")
        vectors = dense.encode(dense.embedder(settings.embedding_model, workspace), [c["text"] for c in chunks])
    summary = report.build(name, documents, skipped, chunks, settings, time.perf_counter() - started)
    folder = workspace.documents / f"{slugify(name)}-{digest}"
    try:
        with atomic.directory(folder) as tmp:
            _write(tmp, name, digest, settings, chunks, index, vectors, summary)
    except FileExistsError:  # built by another session a moment ago: same content, same folder
        pass
    report_progress(1.0, "Collection ready.")
    return folder


def content_hash(files: list[Path], settings: CollectionSettings) -> str:
    digest = hashlib.sha256(json.dumps(settings.public(), sort_keys=True).encode())
    for path in files:
        digest.update(f"\n{path.name}\n".encode())
        try:
            too_big = path.stat().st_size > settings.max_file_mb * 2**20
            digest.update(str(path.stat().st_size).encode() if too_big else _file_digest(path).encode())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()[:12]


def list_collections(workspace: Workspace) -> list[dict]:
    """Every collection's metadata (with its `folder`), newest first."""
    found = []
    for path in workspace.documents.glob(f"*/{COLLECTION_FILE}") if workspace.documents.is_dir() else []:
        try:
            found.append({**json.loads(path.read_text(encoding="utf-8")), "folder": str(path.parent)})
        except (OSError, ValueError):
            continue  # a partial or foreign folder is not a collection
    return sorted(found, key=lambda meta: meta.get("created", ""), reverse=True)


def find_collection(workspace: Workspace, name: str) -> Path:
    """The folder of a collection named `name` (newest version), or with that folder name, or at the path of
    one of this workspace's collections.

    Names come from browsers and API callers, so a path that leads anywhere but this workspace's
    `documents/` folder is not looked at: a caller must not make the app read and quote files it chose.
    """
    name = (name or "").strip()
    candidates = list_collections(workspace)
    for meta in candidates:
        if name in (Path(meta["folder"]).name, meta["name"]):
            return Path(meta["folder"])
    if name and len(Path(name).parts) > 1:
        folder = Path(name).expanduser().resolve()
        inside = folder.parent == workspace.documents.resolve()
        if inside and (folder / COLLECTION_FILE).is_file():
            return folder
    known = ", ".join(sorted({meta["name"] for meta in candidates})) or "none yet"
    raise BadInputError(f"There is no document collection '{name}'. Collections here: {known}.",
                        "Build one first: python -m core.documents add FILES --name NAME, or the Documents panel.")


def open_collection(workspace: Workspace, name: str) -> "Collection":
    return _open(find_collection(workspace, name).resolve(), workspace)


@functools.lru_cache(maxsize=8)
def _open(folder: Path, workspace: Workspace) -> "Collection":
    return Collection(folder, workspace)


class Collection:
    """A loaded collection: its chunks, BM25 index and (if built with them) embeddings."""

    def __init__(self, folder: Path, workspace: Workspace):
        self.folder, self.workspace = Path(folder), workspace
        self.meta = json.loads((self.folder / COLLECTION_FILE).read_text(encoding="utf-8"))
        with open(self.folder / "chunks.jsonl", encoding="utf-8") as handle:
            self.chunks = [json.loads(line) for line in handle if line.strip()]
        self.bm25 = Bm25Index.load(self.folder / "index" / "bm25")
        self.vectors = dense.load(self.folder / "index")

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def id(self) -> str:
        return self.folder.name

    def chunk_id(self, chunk: dict) -> str:
        return f"{self.id}#{chunk['index']}"

    def search(self, query: str, settings: RetrievalSettings = RetrievalSettings()) -> list[Hit]:
        mode = self.mode(settings)
        lexical = self.bm25.scores(query)
        cosine = self._cosine(query) if mode != "bm25" else None
        if mode == "bm25":
            scores, relevant = lexical, lexical >= settings.min_bm25
        elif mode == "dense":
            scores, relevant = cosine, cosine >= settings.min_cosine
        else:
            depth = max(FUSE_DEPTH, 3 * settings.top_k)
            fused = dense.fuse([_ranking(lexical)[:depth], _ranking(cosine)[:depth]])
            scores = np.array([fused.get(i, 0.0) for i in range(len(self.chunks))], dtype=np.float32)
            relevant = (lexical >= settings.min_bm25) | (cosine >= settings.min_cosine)
        chosen = [int(i) for i in np.argsort(-scores, kind="stable") if relevant[i]][:settings.top_k]
        return [Hit(self.chunks[i], float(scores[i]), float(lexical[i]),
                    None if cosine is None else float(cosine[i])) for i in chosen]

    def mode(self, settings: RetrievalSettings) -> str:
        """The ranking used: "auto" is hybrid when the collection has embeddings, else BM25."""
        if settings.mode == "auto":
            return "hybrid" if self.vectors is not None else "bm25"
        if settings.mode != "bm25" and self.vectors is None:
            raise BadInputError(f"Collection '{self.name}' has no embeddings, so it cannot search by meaning.",
                                "Use bm25, or rebuild it with an embedding model.")
        return settings.mode

    def _cosine(self, query: str) -> np.ndarray | None:
        if self.vectors is None:
            return None
        model = dense.embedder(self.meta["settings"]["embedding_model"], self.workspace)
        return np.asarray(self.vectors @ dense.encode(model, [query])[0], dtype=np.float32)


def _ranking(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] > 0]


def _chunk_all(documents, settings: CollectionSettings) -> list[dict]:
    from core.data import lengths

    tokenizer = lengths.load(settings.model)
    chunks: list[dict] = []
    for document in documents:
        chunks += chunk_document(document, tokenizer, settings, first_index=len(chunks))
    return chunks


def _write(folder: Path, name: str, digest: str, settings: CollectionSettings, chunks: list[dict],
           index: Bm25Index, vectors, summary: dict) -> None:
    (folder / "index" / "bm25").mkdir(parents=True)
    index.save(folder / "index" / "bm25")
    if vectors is not None:
        dense.save(folder / "index", vectors)
    atomic.write_jsonl(folder / "chunks.jsonl", chunks)
    atomic.write_json(folder / "report.json", summary)
    atomic.write_text(folder / "report.md", report.to_markdown(summary))
    atomic.write_json(folder / COLLECTION_FILE, {
        "name": name, "hash": digest, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings.public(), "counts": {key: summary[key] for key in ("files", "pages", "chunks", "tokens")},
        "dense": vectors is not None})


def _file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
