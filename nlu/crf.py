"""A trained entity extractor (linear-chain CRF, python-crfsuite) for annotated entities no rule covers.

Works on jieba tokens of the normalised text with BIO labels. Runs after the rule extractors: a span overlapping
an entity a rule already found is dropped, so an ID number or a phone is never reported twice.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pycrfsuite

from nlu.components import BuildContext, Message, TrainExample
from nlu.tokenizer import Token
from nlu.training_data import TrainingData
from nlu.types import Entity

_ROLE_SEP = "@"


def _shape(word: str) -> str:
    out = []
    for ch in word:
        if ch.isdigit():
            c = "d"
        elif ch.isascii() and ch.isalpha():
            c = "a"
        elif "\u4e00" <= ch <= "\u9fff":
            c = "C"
        else:
            c = "p"
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def token_features(words: Sequence[str], lookup: dict[str, str]) -> list[list[str]]:
    feats: list[list[str]] = []
    n = len(words)
    for i, w in enumerate(words):
        f = [
            "bias",
            f"w={w}",
            f"shape={_shape(w)}",
            f"len={min(len(w), 6)}",
            f"p1={w[:1]}",
            f"s1={w[-1:]}",
            f"s2={w[-2:]}",
        ]
        if w in lookup:
            f.append(f"lookup={lookup[w]}")
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                f.append(f"{off}:w={words[j]}")
                if abs(off) == 1:
                    f.append(f"{off}:shape={_shape(words[j])}")
                    f.append(f"{off}:s1={words[j][-1:]}")
            else:
                f.append(f"{off}:pad")
        feats.append(f)
    return feats


def bio_labels(example: TrainExample) -> list[str]:
    labels = ["O"] * len(example.tokens)
    for ent in example.entities:
        tag = ent.entity + (f"{_ROLE_SEP}{ent.role}" if ent.role else "")
        inside = [i for i, t in enumerate(example.tokens) if t.start >= ent.start and t.end <= ent.end]
        for k, i in enumerate(inside):
            labels[i] = ("B-" if k == 0 else "I-") + tag
    return labels


def decode(tokens: Sequence[Token], labels: Sequence[str], marginals: Sequence[float]) -> list[tuple[str, int, int, float]]:
    """BIO labels -> (tag, start token, end token exclusive, confidence); a stray I- starts a new span."""
    spans: list[tuple[str, int, int, float]] = []
    current: tuple[str, int] | None = None
    for i, label in enumerate([*labels, "O"]):
        tag = label[2:] if label != "O" else None
        continues = current is not None and label.startswith("I-") and tag == current[0]
        if current is not None and not continues:
            conf = sum(marginals[current[1] : i]) / (i - current[1])
            spans.append((current[0], current[1], i, conf))
            current = None
        if tag is not None and not continues:
            current = (tag, i)
    return spans


class CRFEntityExtractor:
    name = "CRFEntityExtractor"

    def __init__(self, settings: dict[str, Any], ctx: BuildContext | None = None) -> None:
        self.settings = settings
        self.model: bytes = b""
        self.lookup: dict[str, str] = {}
        # a crfsuite Tagger keeps the last sentence it tagged (``marginal`` reads it): one per thread
        self._local = threading.local()

    def train(self, examples: Sequence[TrainExample], data: TrainingData, ctx: BuildContext) -> None:
        self.lookup = {el: t.name for t in data.lookup_tables for el in t.elements}
        annotated = [e for e in examples if e.entities]
        if not annotated:
            return
        trainer = pycrfsuite.Trainer(verbose=False)
        # all examples, not only annotated ones: the model must also learn what is *not* an entity
        for ex in examples:
            trainer.append(token_features([t.text for t in ex.tokens], self.lookup), bio_labels(ex))
        trainer.set_params(
            {
                "c1": float(self.settings["c1"]),
                "c2": float(self.settings["c2"]),
                "max_iterations": int(self.settings["max_iterations"]),
                "feature.possible_transitions": True,
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "crf.model"
            trainer.train(str(path))
            self.model = path.read_bytes()
        self._local = threading.local()

    def _get_tagger(self) -> pycrfsuite.Tagger | None:
        if not self.model:
            return None
        tagger = getattr(self._local, "tagger", None)
        if tagger is None:
            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(self.model)
            self._local.tagger = tagger
        return tagger

    def process(self, message: Message) -> Message:
        tagger = self._get_tagger()
        if tagger is None or not message.tokens:
            return message
        words = [t.text for t in message.tokens]
        labels = tagger.tag(token_features(words, self.lookup))
        marginals = [tagger.marginal(label, i) for i, label in enumerate(labels)]
        found: list[Entity] = []
        kept = list(message.entities)
        norm = message.normalized
        for tag, a, b, conf in decode(message.tokens, labels, marginals):
            start, end = norm.span_to_original(message.tokens[a].start, message.tokens[b - 1].end)
            entity, _, role = tag.partition(_ROLE_SEP)
            overlapping = [e for e in kept if start < e.end and e.start < end]
            if overlapping and not all(widens(e, entity, start, end) for e in overlapping):
                continue  # a rule extractor already owns this span
            # same type, strictly longer: the rule cut the value short (申请人：罗志刚 → 罗志), the CRF's span wins
            kept = [e for e in kept if e not in overlapping]
            text = norm.original[start:end]
            found.append(Entity(entity, norm.text[message.tokens[a].start : message.tokens[b - 1].end],
                                start, end, text, self.name, round(conf, 4), role or None))
        if not found:
            return message
        return message.evolve(entities=tuple(sorted([*kept, *found], key=lambda e: (e.start, e.end))))

    def to_disk(self, path: Path) -> dict[str, Any]:
        path.mkdir(parents=True, exist_ok=True)
        if self.model:
            (path / "crf.model").write_bytes(self.model)
        return {**self.settings, "lookup": self.lookup}

    @classmethod
    def from_disk(cls, path: Path, settings: dict[str, Any], ctx: BuildContext) -> CRFEntityExtractor:
        lookup = settings.pop("lookup", {})
        self = cls(settings, ctx)
        self.lookup = dict(lookup)
        model = path / "crf.model"
        self.model = model.read_bytes() if model.exists() else b""
        return self


def widens(rule: Entity, entity: str, start: int, end: int) -> bool:
    """True when a CRF span of ``entity`` on ``[start, end)`` strictly contains ``rule``'s span of the same type.

    Only the types where a rule can stop early (free-text names) are widened: an ID or phone number a rule has
    validated is never replaced by a learned guess.
    """
    return (
        rule.entity == entity
        and entity in _WIDENABLE
        and start <= rule.start
        and rule.end <= end
        and end - start > rule.end - rule.start
    )


_WIDENABLE = frozenset({"person_name"})


CRF_DEFAULTS: dict[str, Any] = {"c1": 0.05, "c2": 0.05, "max_iterations": 100}
