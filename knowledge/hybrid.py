"""Pure functions that turn per-retriever scores of candidate groups into one ranking and a confidence.

A *group* is what a citizen gets as one answer: a FAQ entry (all its phrasings plus its question+answer text)
or a document chunk. Scores are fused per group so several phrasings of one FAQ count once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RRF_K = 60  # LangChain's EnsembleRetriever constant


def aggregate_roles(entry_scores: np.ndarray, entry_slot: np.ndarray, entry_role: np.ndarray, n: int) -> np.ndarray:
    """Per group: the mean over roles present (0 = a phrasing, 1 = question+answer) of the best score in
    that role. Measured on ../shared/eval: mean(question, question+answer) beat the max of the two."""
    best = np.full((n, 2), -np.inf, np.float32)
    np.maximum.at(best, (entry_slot, entry_role), entry_scores.astype(np.float32))
    present = np.isfinite(best)
    total = np.where(present, best, 0.0).sum(axis=1)
    count = np.maximum(present.sum(axis=1), 1)
    return (total / count).astype(np.float32)


def fuse_weighted(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    names = [n for n in scores if weights.get(n, 0.0) != 0.0]
    if not names:
        return np.zeros_like(next(iter(scores.values())))
    return np.sum([weights[n] * scores[n] for n in names], axis=0).astype(np.float32)


def fuse_rrf(scores: Mapping[str, np.ndarray], weights: Mapping[str, float], k: int = RRF_K) -> np.ndarray:
    """Weighted reciprocal-rank fusion, as LangChain's EnsembleRetriever (the Langchain-Chatchat baseline)."""
    fused: np.ndarray | None = None
    for name, s in scores.items():
        w = weights.get(name, 0.0)
        if w == 0.0:
            continue
        ranks = np.empty(len(s), np.int64)
        ranks[np.argsort(-s, kind="stable")] = np.arange(len(s))
        part = w / (k + ranks + 1.0)
        fused = part if fused is None else fused + part
    return (fused if fused is not None else np.zeros(0)).astype(np.float32)


def margins(fused: np.ndarray, sources: np.ndarray | None = None) -> np.ndarray:
    """Each group's fused score minus the best score among the other groups (negative below the top).
    A lone candidate is compared with a runner-up scoring 0, so it earns no confidence from being alone.

    With ``sources`` (one key per group: its document, or its FAQ entry), the top group's runner-up is the best
    group from *another* source: two sections of the one right document scoring alike is agreement, not doubt."""
    if len(fused) < 2:
        return fused.astype(np.float32).copy()
    order = np.argsort(-fused)
    top = fused[order[0]]
    if sources is None:
        second = fused[order[1]]
    else:
        rivals = order[1:][sources[order[1:]] != sources[order[0]]]
        second = fused[rivals[0]] if len(rivals) else 0.0
    out = fused - top
    out[order[0]] = top - second
    return out.astype(np.float32)


def confidence(features: Mapping[str, np.ndarray], names: Sequence[str], coef: Sequence[float]) -> np.ndarray:
    """Calibrated probability that a group is the right answer: sigmoid(coef[0] + sum coef[i+1] * feature i),
    a logistic model fitted by knowledge.calibration. A feature the index cannot compute counts as 0."""
    if len(coef) != len(names) + 1:
        raise ValueError(f"calibration needs {len(names) + 1} coefficients for features {list(names)}, got {len(coef)}")
    n = len(next(iter(features.values())))
    logit = np.full(n, coef[0], np.float64)
    for name, c in zip(names, coef[1:], strict=True):
        if name in features:
            logit += c * features[name]
    # clipped: unbounded scores (BM25) would overflow exp
    return (1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))).astype(np.float32)


def top_flags(scores: np.ndarray, sources: np.ndarray | None = None) -> np.ndarray:
    """1.0 for the group a retriever ranks first, 0.0 elsewhere: two models agreeing on the top answer is
    evidence it exists in the index. With ``sources``, every group of the top group's source (another section of
    the same document) counts as agreeing."""
    out = np.zeros(len(scores), np.float32)
    if len(scores):
        best = int(np.argmax(scores))
        if sources is None:
            out[best] = 1.0
        else:
            out[sources == sources[best]] = 1.0
    return out
