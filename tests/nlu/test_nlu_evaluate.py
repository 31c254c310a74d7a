"""Scoring: intent and entity metrics computed by hand on small cases, stratified folds."""

from __future__ import annotations

from nlu.evaluate import Prediction, folds, score
from nlu.training_data import AnnotatedEntity, Example


def _p(gold: str, pred: str, truth: tuple[AnnotatedEntity, ...] = (), found: frozenset = frozenset()) -> Prediction:
    return Prediction(Example("x", gold, truth), pred, found)


def test_intent_metrics_and_confusions() -> None:
    preds = [_p("a", "a"), _p("a", "b"), _p("b", "b"), _p("b", "b"), _p("c", "nlu_fallback")]
    report = score(preds)
    assert report.accuracy == 3 / 5
    assert report.per_intent["a"].precision == 1.0 and report.per_intent["a"].recall == 0.5
    assert round(report.per_intent["b"].precision, 4) == round(2 / 3, 4) and report.per_intent["b"].recall == 1.0
    assert report.per_intent["c"].f1 == 0.0
    expected_macro = (2 * 1 * 0.5 / 1.5 + 2 * (2 / 3) / (5 / 3) + 0.0) / 3
    assert abs(report.macro_f1 - expected_macro) < 1e-9
    assert report.confused[0][2] == 1 and ("a", "b", 1) in report.confused
    assert report.extras["fallback_rate"] == 0.2


def test_entity_metrics_exact_span() -> None:
    gold = (AnnotatedEntity("district", 2, 5, "海淀区", "海淀区"), AnnotatedEntity("service", 6, 9, "公积金", "公积金"))
    found = frozenset({("district", 2, 5), ("service", 6, 8)})
    report = score([_p("a", "a", gold, found)])
    assert report.entities["district"].f1 == 1.0
    assert report.entities["service"].precision == 0.0 and report.entities["service"].recall == 0.0
    assert report.entities["micro"].precision == 0.5 and report.entities["micro"].recall == 0.5


def test_json_keys() -> None:
    data = score([_p("a", "a"), _p("b", "a")]).to_json()
    assert {"accuracy", "macro_f1", "per_intent", "entities"} <= set(data)
    assert set(data["per_intent"]["a"]) == {"precision", "recall", "f1", "support"}


def test_folds_are_stratified_and_disjoint() -> None:
    examples = [Example(f"{i}", "a" if i < 10 else "b") for i in range(20)]
    splits = folds(examples, 5)
    seen = sorted(i for _, test in splits for i in test)
    assert seen == list(range(20))
    for train, test in splits:
        assert not set(train) & set(test)
        assert sorted(examples[i].intent for i in test) == ["a", "a", "b", "b"]
