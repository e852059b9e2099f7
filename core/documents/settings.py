"""Settings of a document collection (`CollectionSettings`) and of a search in it (`RetrievalSettings`).

Every field has the default a first-time user would pick; the Documents panel and the CLI read their
defaults from here. `__post_init__` refuses bad values with text the UI shows as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.errors import BadInputError

MODES = ("auto", "bm25", "dense", "hybrid")


@dataclass(frozen=True)
class CollectionSettings:
    """How files become chunks and indexes. Part of a collection's content hash: other settings, other version."""

    model: str = "default"
    """Whose tokenizer counts chunk tokens: "default" or a local model folder. Pick the model you will chat
    with, so a chunk's size is what it costs in that model's context."""
    chunk_tokens: int = 256
    """Tokens per chunk, its heading line included. Four such chunks take a quarter of a 4,096-token context,
    leaving room for the conversation and the answer."""
    overlap_tokens: int = 32
    """Tokens a chunk repeats from the end of the one before, so a sentence cut at a border is whole in one."""
    embedding_model: str = ""
    """A sentence-transformers model folder or cached Hub id for dense (meaning-based) search; empty keeps the
    collection lexical (BM25 only, no model needed)."""
    max_file_mb: int = 100
    """Largest file read, in MB. A bigger one is listed as skipped before any of it is read."""

    def __post_init__(self) -> None:
        if not 32 <= self.chunk_tokens <= 4096:
            raise BadInputError("chunk_tokens must be between 32 and 4096.")
        if not 0 <= self.overlap_tokens <= self.chunk_tokens // 2:
            raise BadInputError("overlap_tokens must be between 0 and half of chunk_tokens.")
        if not 1 <= self.max_file_mb <= 10_000:
            raise BadInputError("max_file_mb must be between 1 and 10000.")

    def public(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RetrievalSettings:
    """How many chunks a question gets, ranked how, and what counts as relevant at all."""

    top_k: int = 4
    """Chunks offered to the model at most; fewer when the context budget or the threshold says so."""
    mode: str = "auto"
    """"bm25" (words), "dense" (meaning; needs the collection's embedding model), "hybrid" (both, fused by
    reciprocal rank) or "auto": hybrid when the collection has embeddings, else BM25."""
    min_bm25: float = 1.5
    """Lowest BM25 score that counts as relevant. Below it a question shares only common words with a chunk;
    a collection with nothing above it answers "nothing relevant" instead of citing noise."""
    min_cosine: float = 0.35
    """Lowest cosine similarity that counts as relevant in dense search (the embedding model's own scale)."""
    context_share: float = 0.5
    """Largest share of the model's context window the sources may take; the conversation keeps the rest."""

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 50:
            raise BadInputError("top_k must be between 1 and 50.")
        if self.mode not in MODES:
            raise BadInputError(f"Unknown retrieval mode '{self.mode}'.", f"Use one of: {', '.join(MODES)}.")
        if not 0.05 <= self.context_share <= 0.9:
            raise BadInputError("context_share must be between 0.05 and 0.9.")
