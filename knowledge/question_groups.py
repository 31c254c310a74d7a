"""Grouping the questions citizens asked that the knowledge base could not answer, by similarity.

Two questions are near-duplicates when the character unigrams and bigrams of their *keys* overlap enough
(Jaccard). The key is the normalised text (width, traditional→simplified, case: see ``nlu.normalize``) without
punctuation, greetings, sentence-final particles and the question adverbs citizens swap freely ("怎么" / "咋" /
"如何" / "怎样"), so "社保卡丢了咋办" and "社保卡丢了怎么办" get the same key, while "身份证丢了怎么办" shares
only "丢" with them. Characters rather than jieba words: the colloquial variants split differently into words
(咋办 / 怎么 办) and character n-grams need no model.

Overlap alone cannot tell "社保卡在哪办" from "医保卡在哪办" (0.69): short questions about different services share
their whole template. So a *substitution* (each key has a content character the other lacks, ignoring the
template characters in ``GENERIC``) must overlap much more (``SUBSTITUTION_THRESHOLD``) to count; one question
adding words to the other ("出生证明" / "出生医学证明") only needs ``threshold``.
``tests/editor/test_question_groups.py`` measures both on variant and non-variant pairs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from nlu.normalize import normalize_text

DEFAULT_THRESHOLD = 0.5
SUBSTITUTION_THRESHOLD = 0.8
# characters of the question template rather than of its subject: swapping them does not change the subject
GENERIC = frozenset("办理要需能可以去在到哪里什么多久好的了是有才得该应几天时候个我想请问下")

# longest first, so "请问一下" goes before "请问"
_FILLERS = sorted(
    [
        "请问一下", "请问", "我想问一下", "我想问", "想问一下", "想问", "问一下", "你好", "您好", "麻烦问下",
        "怎么样", "怎么", "怎样", "如何", "咋样", "咋", "啥时候", "什么时候",
        "吗", "呢", "啊", "呀", "吧", "哦", "嘛", "哈",
    ],
    key=len,
    reverse=True,
)
_FILLER_RE = re.compile("|".join(map(re.escape, _FILLERS)))
# "啥时候" and "什么时候" are the same question; one spelling for each pair of colloquial synonyms
_SYNONYMS = (("啥", "什么"), ("多会儿", "什么时候"), ("哪儿", "哪里"), ("哪里", "哪"), ("丢失", "丢"), ("丢了", "丢"))


def surface_key(text: str) -> str:
    """``text`` normalised, without punctuation and spaces: the same wording however it was punctuated."""
    return "".join(ch for ch in normalize_text(text) if not unicodedata.category(ch).startswith(("P", "Z", "C")))


def question_key(text: str) -> str:
    """``text`` normalised, without punctuation, greetings, particles and question adverbs."""
    norm = normalize_text(text)
    for old, new in _SYNONYMS:
        norm = norm.replace(old, new)
    kept = "".join(ch for ch in norm if not unicodedata.category(ch).startswith(("P", "Z", "S", "C")))
    stripped = _FILLER_RE.sub("", kept)
    return stripped or kept  # a question made only of fillers ("怎么办？") keeps them


def features(key: str) -> frozenset[str]:
    """Character unigrams and bigrams of a key."""
    return frozenset(key) | frozenset(key[i : i + 2] for i in range(len(key) - 1))


def _score(ka: str, fa: frozenset[str], kb: str, fb: frozenset[str]) -> float:
    if not fa or not fb:
        return 1.0 if fa == fb else 0.0
    score = len(fa & fb) / len(fa | fb)
    substitution = bool(set(ka) - set(kb) - GENERIC) and bool(set(kb) - set(ka) - GENERIC)
    if substitution and score < SUBSTITUTION_THRESHOLD:
        return 0.0
    return score


def similarity(a: str, b: str) -> float:
    """How alike two questions are, 0..1: the Jaccard similarity of their keys' character n-grams, or 0 for a
    substitution of content characters that does not overlap at least ``SUBSTITUTION_THRESHOLD``."""
    ka, kb = question_key(a), question_key(b)
    return _score(ka, features(ka), kb, features(kb))


class Asked(Protocol):
    """What grouping needs of an unanswered question (a database row fits)."""

    id: int
    query: str
    count: int
    first_asked: datetime
    last_asked: datetime


@dataclass
class QuestionGroup:
    """Near-duplicate questions; the representative is the most asked one."""

    representative: Asked
    members: list[Asked] = field(default_factory=list)
    key: str = ""
    key_features: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return sum(m.count for m in self.members)

    @property
    def first_asked(self) -> datetime:
        return min(m.first_asked for m in self.members)

    @property
    def last_asked(self) -> datetime:
        return max(m.last_asked for m in self.members)

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.members]


def group_questions(rows: Iterable[Asked], threshold: float = DEFAULT_THRESHOLD) -> list[QuestionGroup]:
    """Groups of near-duplicates, most asked first. Rows are taken most asked first; each joins the group whose
    representative it resembles most (at least ``threshold``) or starts a new one. Comparing with the
    representative only, not with every member, keeps a chain of small differences from merging unrelated
    questions."""
    ordered: Sequence[Asked] = sorted(rows, key=lambda r: (-r.count, -r.last_asked.timestamp(), r.id))
    groups: list[QuestionGroup] = []
    for row in ordered:
        key = question_key(row.query)
        f = features(key)
        best, best_score = None, threshold
        for group in groups:
            score = _score(key, f, group.key, group.key_features)
            if score >= best_score:
                best, best_score = group, score
        if best is None:
            groups.append(QuestionGroup(row, [row], key, f))
        else:
            best.members.append(row)
    groups.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
    return groups
