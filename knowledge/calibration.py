"""Fitting the confidence model behind abstention, and choosing its thresholds.

Positives: answerable queries whose top hit is right. Negatives: the top hit of each query searched with its
gold entry removed from the index (an in-domain question the knowledge base cannot answer: the hardest
kind), plus top hits that are simply wrong. A logistic model on features of the top hit (those
``SearchIndex.search`` puts in ``Hit.scores``: fused score, margin, each retriever's and each ensemble
member's score, member agreement, pinyin coverage of the query, the query's OOV share and length) gives a
probability. ``python -m knowledge.calibration`` fits on the tuning set, prints the trade-off curve, and checks
it on a held-out set that is never fitted on.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from knowledge.config import KnowledgeConfig
from knowledge.embedders import Embedder, make_embedder
from knowledge.evaluate import EvalQuery, load_faq, load_queries
from knowledge.lexical import JiebaWords, WordSegmenter
from knowledge.retrieval import SearchIndex, build_index
from knowledge.types import Passage


@dataclass(frozen=True)
class TopHit:
    features: dict[str, float]  # the top hit's Hit.scores; empty when the search returned nothing
    correct: bool  # the top hit is a gold entry (never, for a removed or unanswerable query)


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    abstain_gold_removed: float
    answered_correct: float
    answered: float


@dataclass(frozen=True)
class Sample:
    """Top hits of one eval set: answerable queries, the same with gold removed, unanswerable queries."""

    answerable: list[TopHit]
    removed: list[TopHit]
    unanswerable: list[TopHit]


def top_hits(index: SearchIndex, queries: Sequence[EvalQuery]) -> list[TopHit]:
    out = []
    for q in queries:
        hits = index.search(q.text, k=10).hits
        top = hits[0] if hits else None
        out.append(TopHit(features=dict(top.scores) if top else {},
                          correct=bool(top and top.passage.faq_id in q.gold)))
    return out


def collect(
    passages: Sequence[Passage],
    queries: Sequence[EvalQuery],
    embedder: Embedder,
    cache_dir: Path,
    config: KnowledgeConfig,
    tokenizer: WordSegmenter,
) -> Sample:
    """One index for the answerable and unanswerable queries, one per distinct gold set for the removed ones
    (the vector cache makes each rebuild embed nothing)."""
    index = build_index(passages, embedder, cache_dir, config, tokenizer=tokenizer)
    answerable = [q for q in queries if q.gold]
    by_gold: dict[frozenset[int], list[int]] = {}
    for i, q in enumerate(answerable):
        by_gold.setdefault(q.gold, []).append(i)
    removed: dict[int, TopHit] = {}
    for gold, members in by_gold.items():
        kept = build_index([p for p in passages if p.faq_id not in gold], embedder, cache_dir, config,
                           tokenizer=tokenizer)
        for i, hit in zip(members, top_hits(kept, [answerable[i] for i in members]), strict=True):
            removed[i] = TopHit(features=hit.features, correct=False)
    return Sample(
        answerable=top_hits(index, answerable),
        removed=[removed[i] for i in sorted(removed)],
        unanswerable=[TopHit(h.features, False) for h in top_hits(index, [q for q in queries if not q.gold])],
    )


def matrix(hits: Sequence[TopHit], names: Sequence[str]) -> np.ndarray:
    return np.asarray([[h.features.get(n, 0.0) for n in names] for h in hits], np.float64).reshape(-1, len(names))


def fit_confidence(sample: Sample, names: Sequence[str], c: float = 10.0) -> list[float]:
    """Intercept and one coefficient per feature. Negatives: gold-removed and wrong top hits."""
    negatives = [*sample.removed, *sample.unanswerable]
    x = np.vstack([matrix(sample.answerable, names), matrix(negatives, names)])
    y = np.asarray([h.correct for h in sample.answerable] + [False] * len(negatives), int)
    model = LogisticRegression(C=c, max_iter=5000).fit(x, y)
    return [float(model.intercept_[0]), *(float(v) for v in model.coef_[0])]


def probabilities(hits: Sequence[TopHit], names: Sequence[str], coef: Sequence[float]) -> np.ndarray:
    logit = coef[0] + matrix(hits, names) @ np.asarray(coef[1:], np.float64)
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))


def curve(sample: Sample, names: Sequence[str], coef: Sequence[float],
          thresholds: Sequence[float] | None = None) -> list[OperatingPoint]:
    p_in = probabilities(sample.answerable, names, coef)
    p_out = probabilities(sample.removed, names, coef)
    right = np.asarray([h.correct for h in sample.answerable])
    grid = thresholds if thresholds is not None else np.round(np.arange(0.05, 1.0, 0.05), 2)
    return [
        OperatingPoint(
            threshold=float(t),
            abstain_gold_removed=float((p_out < t).mean()),
            answered_correct=float((right & (p_in >= t)).mean()),
            answered=float((p_in >= t).mean()),
        )
        for t in grid
    ]


def load_sample(faq: Path, queries: Path, unanswerable: Path | None, embedder: Embedder, cache: Path,
                config: KnowledgeConfig, tokenizer: WordSegmenter) -> Sample:
    passages, ids = load_faq(faq)
    qs = load_queries(queries, ids)
    if unanswerable is not None and unanswerable.exists():
        qs += load_queries(unanswerable, ids)
    return collect(passages, qs, embedder, cache, config, tokenizer)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit the abstention confidence model on a FAQ + queries set.")
    parser.add_argument("--faq", type=Path, default=Path("../shared/eval/faq.jsonl"))
    parser.add_argument("--queries", type=Path, default=Path("../shared/eval/queries.jsonl"))
    parser.add_argument("--heldout-faq", type=Path, default=Path("knowledge_base/faq.jsonl"))
    parser.add_argument("--heldout-queries", type=Path, default=Path("knowledge_base/eval/queries.jsonl"))
    parser.add_argument("--heldout-unanswerable", type=Path, default=Path("knowledge_base/eval/unanswerable.jsonl"))
    parser.add_argument("--features", default=",".join(KnowledgeConfig().confidence_features))
    parser.add_argument("--project", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    config = KnowledgeConfig()
    names = [n for n in args.features.split(",") if n]
    embedder = make_embedder(config, args.project)
    tokenizer = JiebaWords()
    with tempfile.TemporaryDirectory() as tmp:
        tuning = load_sample(args.faq, args.queries, None, embedder, Path(tmp), config, tokenizer)
        held = None
        if args.heldout_queries.exists():
            held = load_sample(args.heldout_faq, args.heldout_queries, args.heldout_unanswerable, embedder,
                               Path(tmp), config, tokenizer)
    coef = fit_confidence(tuning, names)
    print(json.dumps({"confidence_features": names, "calibration": [round(c, 4) for c in coef]}))
    print("tuning set (fitted here):")
    for point in curve(tuning, names, coef):
        print(" ", point)
    if held is not None:
        print("held-out set (never fitted on):")
        for point in curve(held, names, coef):
            un = float((probabilities(held.unanswerable, names, coef) < point.threshold).mean())
            print(" ", point, f"abstain_unanswerable={un:.3f}")


if __name__ == "__main__":
    main()
