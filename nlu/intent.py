"""Intent classification: sparse n-gram TF-IDF + dense sentence features into one linear model.

Chosen by measurement (5-fold stratified cross-validation, intent macro-F1; see ``nlu.evaluate`` and the
report in ``bench/nlu.py``'s docstring). On the demo data (``data/nlu.yml``)::

    variant                                           macro-F1   train s
    char 1-4 + word 1-2 TF-IDF, LogisticRegression      see bench/nlu.py docstring
    USE 512-d only, LogisticRegression
    TF-IDF + USE, LogisticRegression   (shipped)
    TF-IDF + USE, calibrated LinearSVC

The shipped model is multinomial logistic regression: calibrated-enough probabilities for a fallback threshold,
and its weights are plain arrays, so prediction needs numpy only (no scikit-learn at parse time) and the
artefact is ``.npz`` + JSON, never a pickle.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu.components import BuildContext, Encoder, Message, TrainExample
from nlu.training_data import TrainingData
from nlu.types import IntentScore

FALLBACK_INTENT = "nlu_fallback"


def char_ngrams(text: str, lo: int, hi: int) -> list[str]:
    # spaces are kept as a visible boundary so "hi 你好" and "hi你好" differ only where they really differ
    s = text.replace(" ", "_")
    return [f"c{n}:{s[i : i + n]}" for n in range(lo, hi + 1) for i in range(len(s) - n + 1)]


def word_ngrams(words: Sequence[str]) -> list[str]:
    grams = [f"w:{w}" for w in words]
    grams += [f"b:{a}|{b}" for a, b in zip(words, words[1:], strict=False)]
    return grams


class SparseFeaturizer:
    """TF-IDF over char n-grams and jieba word uni/bigrams, each block L2-normalised and weighted."""

    def __init__(self, char_range: tuple[int, int], char_weight: float, word_weight: float,
                 vocabulary: dict[str, int] | None = None, idf: np.ndarray | None = None) -> None:
        self.char_range = char_range
        self.char_weight = char_weight
        self.word_weight = word_weight
        self.vocabulary = vocabulary or {}
        self.idf = idf if idf is not None else np.zeros(0, dtype=np.float32)

    def _blocks(self, text: str, words: Sequence[str]) -> tuple[list[str], ...]:
        return char_ngrams(text, *self.char_range), word_ngrams(words)

    def _weights(self) -> tuple[float, ...]:
        return self.char_weight, self.word_weight

    def fit(self, docs: Sequence[tuple[str, Sequence[str]]]) -> SparseFeaturizer:
        df: Counter[str] = Counter()
        for text, words in docs:
            df.update({g for block in self._blocks(text, words) for g in block})
        terms = sorted(df)
        self.vocabulary = {t: i for i, t in enumerate(terms)}
        n = len(docs)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], dtype=np.float32)
        return self

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def transform_one(self, text: str, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        indices: list[int] = []
        values: list[float] = []
        for block, weight in zip(self._blocks(text, words), self._weights(), strict=True):
            counts = Counter(g for g in block if g in self.vocabulary)
            if not counts:
                continue
            idx = np.fromiter((self.vocabulary[g] for g in counts), dtype=np.int64, count=len(counts))
            tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
            val = tf * self.idf[idx]
            val *= weight / max(float(np.linalg.norm(val)), 1e-12)
            indices.extend(idx.tolist())
            values.extend(val.tolist())
        return np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float32)

    def transform(self, docs: Sequence[tuple[str, Sequence[str]]]) -> Any:
        from scipy.sparse import csr_matrix

        rows, cols, vals = [], [], []
        for r, (text, words) in enumerate(docs):
            idx, val = self.transform_one(text, words)
            rows.extend([r] * len(idx))
            cols.extend(idx.tolist())
            vals.extend(val.tolist())
        return csr_matrix((vals, (rows, cols)), shape=(len(docs), self.size), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class IntentClassifier:
    """Trained intent classifier; assigns ``intent`` and ``ranking``."""

    name = "IntentClassifier"

    def __init__(self, settings: dict[str, Any], ctx: BuildContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.featurizer = SparseFeaturizer(
            tuple(settings["char_ngram_range"]), settings["char_weight"], settings["word_weight"]
        )
        self.use_dense = bool(settings["dense_features"])
        self.dense_weight = float(settings["dense_weight"])
        self.labels: list[str] = []
        self.coef_sparse = np.zeros((0, 0), dtype=np.float32)  # (features, classes): column gather is cheap
        self.coef_dense = np.zeros((0, 0), dtype=np.float32)
        self.intercept = np.zeros(0, dtype=np.float32)

    # -------------------------------------------------------------------------- features
    def _encoder(self) -> Encoder | None:
        return self.ctx.encoder() if self.use_dense else None

    def _dense(self, texts: Sequence[str]) -> np.ndarray:
        enc = self._encoder()
        if enc is None:
            return np.zeros((len(texts), 0), dtype=np.float32)
        return np.asarray(enc.encode(list(texts)), dtype=np.float32) * self.dense_weight

    def design_matrix(self, examples: Sequence[TrainExample]) -> Any:
        from scipy.sparse import csr_matrix, hstack

        docs = [(e.normalized.text, [t.text for t in e.tokens]) for e in examples]
        sparse = self.featurizer.transform(docs)
        dense = self._dense([e.normalized.text for e in examples])
        return hstack([sparse, csr_matrix(dense)], format="csr") if dense.shape[1] else sparse

    # -------------------------------------------------------------------------- training
    def train(self, examples: Sequence[TrainExample], data: TrainingData, ctx: BuildContext) -> None:
        from sklearn.linear_model import LogisticRegression

        if len({e.example.intent for e in examples}) < 2:
            raise ValueError("intent classification needs at least two intents / 至少需要两个意图才能训练")
        self.featurizer.fit([(e.normalized.text, [t.text for t in e.tokens]) for e in examples])
        x = self.design_matrix(examples)
        y = [e.example.intent for e in examples]
        model = LogisticRegression(C=float(self.settings["C"]), max_iter=int(self.settings["max_iter"]))
        model.fit(x, y)
        self.labels = [str(c) for c in model.classes_]
        coef = model.coef_.astype(np.float32)
        intercept = model.intercept_.astype(np.float32)
        if coef.shape[0] == 1:  # binary: sklearn keeps one row; make it a two-class softmax
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
        n_sparse = self.featurizer.size
        self.coef_sparse = np.ascontiguousarray(coef[:, :n_sparse].T)
        self.coef_dense = np.ascontiguousarray(coef[:, n_sparse:].T)
        self.intercept = intercept

    # -------------------------------------------------------------------------- prediction
    def predict_proba(self, text: str, words: Sequence[str]) -> np.ndarray:
        idx, val = self.featurizer.transform_one(text, words)
        logits = self.intercept + val @ self.coef_sparse[idx]
        if self.coef_dense.shape[0]:
            logits = logits + self._dense([text])[0] @ self.coef_dense
        return softmax(logits)

    def process(self, message: Message) -> Message:
        probs = self.predict_proba(message.normalized.text, [t.text for t in message.tokens])
        order = np.argsort(-probs)[: int(self.settings["ranking_length"])]
        ranking = tuple(IntentScore(self.labels[i], float(probs[i])) for i in order)
        return message.evolve(intent=ranking[0], ranking=ranking)

    # -------------------------------------------------------------------------- persistence
    def to_disk(self, path: Path) -> dict[str, Any]:
        path.mkdir(parents=True, exist_ok=True)
        np.savez(
            path / "weights.npz",
            coef_sparse=self.coef_sparse,
            coef_dense=self.coef_dense,
            intercept=self.intercept,
            idf=self.featurizer.idf,
        )
        vocab = sorted(self.featurizer.vocabulary, key=self.featurizer.vocabulary.__getitem__)
        (path / "vocabulary.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        return {**self.settings, "labels": self.labels}

    @classmethod
    def from_disk(cls, path: Path, settings: dict[str, Any], ctx: BuildContext) -> IntentClassifier:
        labels = settings.pop("labels")
        self = cls(settings, ctx)
        self.labels = list(labels)
        with np.load(path / "weights.npz") as w:
            self.coef_sparse = w["coef_sparse"]
            self.coef_dense = w["coef_dense"]
            self.intercept = w["intercept"]
            self.featurizer.idf = w["idf"]
        vocab = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
        self.featurizer.vocabulary = {t: i for i, t in enumerate(vocab)}
        return self


INTENT_DEFAULTS: dict[str, Any] = {
    "char_ngram_range": [1, 4],
    "char_weight": 1.0,
    "word_weight": 1.0,
    "dense_features": True,
    "dense_weight": 2.0,
    "C": 20.0,
    "max_iter": 2000,
    "ranking_length": 10,
}


class FallbackClassifier:
    """Sets ``nlu_fallback`` when the top intent is unsure or too close to the runner-up; ranking kept as is."""

    name = "FallbackClassifier"

    def __init__(self, settings: dict[str, Any], ctx: BuildContext | None = None) -> None:
        self.settings = settings
        self.threshold = float(settings["threshold"])
        self.ambiguity_threshold = float(settings["ambiguity_threshold"])

    def process(self, message: Message) -> Message:
        ranking = message.ranking
        if not ranking:
            return message
        top = ranking[0].confidence
        second = ranking[1].confidence if len(ranking) > 1 else 0.0
        if top < self.threshold or top - second < self.ambiguity_threshold:
            # as Rasa: the fallback intent carries the threshold as its confidence
            return message.evolve(intent=IntentScore(FALLBACK_INTENT, self.threshold))
        return message

    def to_disk(self, path: Path) -> dict[str, Any]:
        return dict(self.settings)

    @classmethod
    def from_disk(cls, path: Path, settings: dict[str, Any], ctx: BuildContext) -> FallbackClassifier:
        return cls(settings, ctx)


FALLBACK_DEFAULTS: dict[str, Any] = {"threshold": 0.4, "ambiguity_threshold": 0.1}
