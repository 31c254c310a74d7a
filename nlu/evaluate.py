"""Scoring an NLU model: intent accuracy / macro-F1 / per-intent P-R-F1, entity P-R-F1, most-confused pairs.

Intents are scored as the pipeline answers, ``nlu_fallback`` included (a fallback on an in-scope example is an
error, as in Rasa). Entities are scored by exact (type, start, end) match, only for the entity types annotated
in the test data: rule extractors also find times and numbers nobody annotated, which are not errors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nlu.pipeline import Interpreter
from nlu.training_data import Example, TrainingData

# Fixed reference time so time entities (and so scores) do not change with the clock.
REFERENCE_TIME = datetime.fromisoformat("2026-11-27T10:00:00+08:00")


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int

    def to_json(self) -> dict[str, Any]:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "support": self.support}


def _prf(tp: int, fp: int, fn: int) -> Scores:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return Scores(p, r, f, tp + fn)


@dataclass(frozen=True)
class Prediction:
    example: Example
    intent: str
    # (entity, start, end) found, restricted to annotated types
    entities: frozenset[tuple[str, int, int]]


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    macro_f1: float
    per_intent: dict[str, Scores]
    entities: dict[str, Scores]  # "micro" plus one entry per entity type
    confused: list[tuple[str, str, int]]  # (gold, predicted, count), most frequent first
    examples: int
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_intent": {k: v.to_json() for k, v in sorted(self.per_intent.items())},
            "entities": {k: v.to_json() for k, v in sorted(self.entities.items())},
            "confused": [{"intent": g, "predicted": p, "count": n} for g, p, n in self.confused],
            "examples": self.examples,
            **self.extras,
        }


def predict(interpreter: Interpreter, examples: Sequence[Example], entity_types: set[str]) -> list[Prediction]:
    out = []
    for ex in examples:
        result = interpreter.parse(ex.text, now=REFERENCE_TIME)
        found = frozenset((e.entity, e.start, e.end) for e in result.entities if e.entity in entity_types)
        out.append(Prediction(ex, result.intent.name, found))
    return out


def score(predictions: Sequence[Prediction], top_confused: int = 10) -> EvaluationReport:
    gold = [p.example.intent for p in predictions]
    pred = [p.intent for p in predictions]
    labels = sorted(set(gold))
    per_intent: dict[str, Scores] = {}
    for label in labels:
        tp = sum(g == label and q == label for g, q in zip(gold, pred, strict=True))
        fp = sum(g != label and q == label for g, q in zip(gold, pred, strict=True))
        fn = sum(g == label and q != label for g, q in zip(gold, pred, strict=True))
        per_intent[label] = _prf(tp, fp, fn)
    accuracy = sum(g == q for g, q in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0
    macro_f1 = sum(s.f1 for s in per_intent.values()) / len(per_intent) if per_intent else 0.0
    confused = Counter((g, q) for g, q in zip(gold, pred, strict=True) if g != q)

    counts: dict[str, list[int]] = {}
    for p in predictions:
        truth = {(a.entity, a.start, a.end) for a in p.example.entities}
        for key in truth | p.entities:
            tp_fp_fn = counts.setdefault(key[0], [0, 0, 0])
            if key in truth and key in p.entities:
                tp_fp_fn[0] += 1
            elif key in p.entities:
                tp_fp_fn[1] += 1
            else:
                tp_fp_fn[2] += 1
    entities = {name: _prf(*c) for name, c in counts.items()}
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    entities["micro"] = _prf(*totals)
    return EvaluationReport(
        accuracy=accuracy,
        macro_f1=macro_f1,
        per_intent=per_intent,
        entities=entities,
        confused=[(g, q, n) for (g, q), n in confused.most_common(top_confused)],
        examples=len(predictions),
        extras={"fallback_rate": round(pred.count("nlu_fallback") / len(pred), 4) if pred else 0.0},
    )


def evaluate(interpreter: Interpreter, test: TrainingData) -> EvaluationReport:
    return score(predict(interpreter, test.examples, set(test.entity_types)))


def folds(examples: Sequence[Example], k: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """Stratified K folds: each intent's examples dealt round-robin after a seeded shuffle."""
    import random

    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds / 交叉验证至少需要 2 折")
    rng = random.Random(seed)
    by_intent: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_intent.setdefault(ex.intent, []).append(i)
    assignment = [0] * len(examples)
    offset = 0
    for intent in sorted(by_intent):
        idx = by_intent[intent]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            assignment[i] = (j + offset) % k
        offset += len(idx)  # so intents with few examples do not all land in fold 0
    out = []
    for f in range(k):
        test = [i for i, a in enumerate(assignment) if a == f]
        train = [i for i, a in enumerate(assignment) if a != f]
        out.append((train, test))
    return out


def cross_validate(
    data: TrainingData,
    k: int,
    train_fn: Callable[[TrainingData], Interpreter],
    seed: int = 0,
) -> EvaluationReport:
    """Train on K-1 folds and predict the held-out one, K times; scores pooled over all predictions."""
    predictions: list[Prediction] = []
    entity_types = set(data.entity_types)
    for train_idx, test_idx in folds(data.examples, k, seed):
        interpreter = train_fn(data.with_examples(data.examples[i] for i in train_idx))
        predictions += predict(interpreter, [data.examples[i] for i in test_idx], entity_types)
    report = score(predictions)
    return EvaluationReport(
        report.accuracy, report.macro_f1, report.per_intent, report.entities, report.confused,
        report.examples, {**report.extras, "folds": k},
    )
