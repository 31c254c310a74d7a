"""Fitting the confidence model behind abstention, and choosing its thresholds.

Positives: answerable queries whose top hit is right. Negatives: the top hit of each query searched with its
gold entry removed from the index (an in-domain question the knowledge base cannot answer: the hardest
kind), plus top hits that are simply wrong. A logistic model on the fused top score and the margin to the
runner-up gives a probability; ``python -m knowledge.calibration`` prints the fit and the trade-off curve
from which the defaults in ``KnowledgeConfig`` were taken.
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
from knowledge.embedders import make_embedder
from knowledge.evaluate import QueryOutcome, leave_gold_out, load_faq, load_queries, run_queries
from knowledge.lexical import JiebaWords
from knowledge.retrieval import build_index


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    abstain_gold_removed: float
    answered_correct: float
    answered: float


def fit_confidence(answerable: Sequence[QueryOutcome], removed: Sequence[QueryOutcome]) -> tuple[float, float, float]:
    x = np.asarray([[o.fused, o.margin] for o in [*answerable, *removed]], np.float64)
    y = np.asarray([o.rank == 1 for o in answerable] + [False] * len(removed), int)
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x, y)
    return float(model.intercept_[0]), float(model.coef_[0][0]), float(model.coef_[0][1])


def _probability(o: QueryOutcome, coef: Sequence[float]) -> float:
    return float(1.0 / (1.0 + np.exp(-(coef[0] + coef[1] * o.fused + coef[2] * o.margin))))


def curve(
    answerable: Sequence[QueryOutcome], removed: Sequence[QueryOutcome], coef: Sequence[float]
) -> list[OperatingPoint]:
    p_in = np.asarray([_probability(o, coef) for o in answerable])
    p_out = np.asarray([_probability(o, coef) for o in removed])
    right = np.asarray([o.rank == 1 for o in answerable])
    return [
        OperatingPoint(
            threshold=float(t),
            abstain_gold_removed=float((p_out < t).mean()),
            answered_correct=float((right & (p_in >= t)).mean()),
            answered=float((p_in >= t).mean()),
        )
        for t in np.round(np.arange(0.05, 1.0, 0.05), 2)
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit the abstention confidence model on a FAQ + queries set.")
    parser.add_argument("--faq", type=Path, default=Path("../shared/eval/faq.jsonl"))
    parser.add_argument("--queries", type=Path, default=Path("../shared/eval/queries.jsonl"))
    parser.add_argument("--project", type=Path, default=Path("."))
    args = parser.parse_args(argv)
    config = KnowledgeConfig()
    passages, ids = load_faq(args.faq)
    queries = [q for q in load_queries(args.queries, ids) if q.gold]
    embedder = make_embedder(config, args.project)
    tokenizer = JiebaWords()
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(passages, embedder, Path(tmp), config, tokenizer=tokenizer)
        answerable = run_queries(index, queries)
        removed = leave_gold_out(passages, queries, embedder, Path(tmp), config, tokenizer)
    coef = fit_confidence(answerable, removed)
    print(json.dumps({"calibration": [round(c, 4) for c in coef]}))
    for point in curve(answerable, removed, coef):
        print(point)


if __name__ == "__main__":
    main()
