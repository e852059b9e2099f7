"""Dense (meaning-based) search: sentence-transformers embeddings, optional, and reciprocal-rank fusion.

Contract: `embedder(reference, workspace)` loads a sentence-transformers model from a local folder, a cached
Hub id or "default" (the default chat model, mean-pooled: always there, though a weak embedder), after the
same safety checks as any model (safetensors only, no remote code). `encode(model, texts)` returns
L2-normalised float32 rows, so a dot product is the cosine. `fuse(rankings)` is reciprocal-rank fusion.

sentence-transformers is imported only here and only when a collection asks for embeddings; without it
the app still builds and searches BM25 collections, and asking for dense search says how to install it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from core.errors import CapabilityError
from core.workspace import Workspace

RRF_K = 60
"""The constant of reciprocal-rank fusion (Cormack et al., 2009): 1 / (60 + rank) per ranking."""


def embedder(reference: str, workspace: Workspace):
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise CapabilityError("Dense search needs the sentence-transformers package, which is not installed.",
                              "Install it (pip install sentence-transformers==6.2.0), or leave the embedding "
                              "model empty to use BM25 only.") from None
    from core import models

    return _load(str(models.resolve(reference, workspace)))


@functools.lru_cache(maxsize=2)
def _load(folder: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(folder, device="cpu", local_files_only=True)


def encode(model, texts: list[str], batch_size: int = 16) -> np.ndarray:
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def fuse(rankings: list[list[int]]) -> dict[int, float]:
    """Reciprocal-rank fusion of several rankings (best first) into one score per item."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def save(folder: Path, vectors: np.ndarray) -> None:
    np.save(folder / "embeddings.npy", vectors)


def load(folder: Path) -> np.ndarray | None:
    path = folder / "embeddings.npy"
    return np.load(path, mmap_mode="r") if path.is_file() else None
