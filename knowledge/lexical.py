"""Lexical retrievers: each scores every document against a query, so the hybrid can fuse exact scores.

Three views of the same text, measured on ../shared/eval (60 FAQ, 180 queries, question+answer documents):
- ``PinyinIndex``: TF-IDF over pinyin syllables and syllable bigrams, plus whole-word pinyin and initials.
  Citizens type ``shebao``, ``gjj`` or a homophone typo; no other retriever sees those. R@1 0.58 alone, and the
  only lexical view that still helps once fused with the dense scores (+0.07 R@1).
- ``CharNgramIndex``: TF-IDF over character 1-2-grams (R@1 0.61 alone, adds nothing on top of dense + pinyin).
- ``BM25Index``: Okapi BM25 over jieba words (R@1 0.47 alone; kept for the Chatchat-style baseline).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
from rank_bm25 import BM25Okapi
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.tokenizer import ChineseTokenizer


class LexicalIndex(Protocol):
    name: str

    def scores(self, normalized_query: str) -> np.ndarray:
        """One score per indexed document (in the order given at build time)."""
        ...


class CharNgramIndex:
    name = "char"

    def __init__(self, normalized_docs: Sequence[str], ngram_range: tuple[int, int] = (1, 2)) -> None:
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform(list(normalized_docs) or [""])

    def scores(self, normalized_query: str) -> np.ndarray:
        q = self._vectorizer.transform([normalized_query])
        return np.asarray((self._matrix @ q.T).todense()).ravel().astype(np.float32)


class BM25Index:
    name = "bm25"

    def __init__(self, normalized_docs: Sequence[str], tokenizer: ChineseTokenizer) -> None:
        self._tokenizer = tokenizer
        corpus = [self._words(d) or [""] for d in normalized_docs] or [[""]]
        self._bm25 = BM25Okapi(corpus)

    def _words(self, text: str) -> list[str]:
        return [w for w in self._tokenizer.words(text) if w.strip() and not _PUNCT.fullmatch(w)]

    def scores(self, normalized_query: str) -> np.ndarray:
        return np.asarray(self._bm25.get_scores(self._words(normalized_query)), dtype=np.float32)

    def __getstate__(self) -> dict[str, object]:
        # the spaCy pipeline does not pickle; it is supplied again on load
        return {"_bm25": self._bm25}

    def attach(self, tokenizer: ChineseTokenizer) -> None:
        self._tokenizer = tokenizer


_PUNCT = re.compile(r"[\W_]+")
_LATIN_OR_NOT = re.compile(r"[a-z]+|[^a-z]+")


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    import pypinyin
    from pypinyin.constants import PINYIN_DICT

    found = set()
    for cp in PINYIN_DICT:
        s = pypinyin.lazy_pinyin(chr(cp))[0]
        if s.isascii() and s.isalpha():
            found.add(s)
    return frozenset(found)


def split_syllables(run: str) -> list[str] | None:
    """Greedy longest-match split of a Latin run into pinyin syllables; None when it is not pinyin."""
    syllables = _syllables()
    out: list[str] = []
    i = 0
    while i < len(run):
        for length in range(6, 0, -1):
            piece = run[i : i + length]
            if len(piece) == length and piece in syllables:
                out.append(piece)
                i += length
                break
        else:
            return None
    return out


def pinyin_tokens(normalized: str, words: Callable[[str], list[str]] | None = None) -> list[str]:
    """Syllables of Chinese characters and of Latin pinyin runs; ``#word`` tokens for whole Latin runs and,
    when ``words`` segments the text, for each Chinese word's full pinyin and initials (``#gjj``)."""
    import pypinyin

    tokens: list[str] = []
    for m in _LATIN_OR_NOT.finditer(normalized):
        run = m.group()
        if run[0].isascii() and run[0].isalpha():
            tokens.extend(split_syllables(run) or [])
            tokens.append("#" + run)
        else:
            tokens.extend(p for p in pypinyin.lazy_pinyin(run) if p.isascii() and p.isalpha())
    if words is not None:
        for word in words(normalized):
            if len(word) >= 2 and not word.isascii():
                syl = [p for p in pypinyin.lazy_pinyin(word) if p.isascii() and p.isalpha()]
                if len(syl) == len(word):
                    tokens.append("#" + "".join(syl))
                    tokens.append("#" + "".join(s[0] for s in syl))
    return tokens


def _with_bigrams(tokens: list[str]) -> list[str]:
    plain = [t for t in tokens if not t.startswith("#")]
    return tokens + [a + "_" + b for a, b in zip(plain, plain[1:], strict=False)]


class PinyinIndex:
    name = "pinyin"

    def __init__(self, normalized_docs: Sequence[str], tokenizer: ChineseTokenizer) -> None:
        docs = [_with_bigrams(pinyin_tokens(d, tokenizer.words)) for d in normalized_docs] or [[]]
        self._vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform(docs)

    def scores(self, normalized_query: str) -> np.ndarray:
        q = self._vectorizer.transform([_with_bigrams(pinyin_tokens(normalized_query))])
        return np.asarray((self._matrix @ q.T).todense()).ravel().astype(np.float32)


def _identity(tokens: list[str]) -> list[str]:
    # a module-level function (not a lambda) so the fitted vectorizer pickles
    return tokens


LEXICAL_NAMES = ("pinyin", "char", "bm25")


def build_lexical(name: str, normalized_docs: Sequence[str], tokenizer: ChineseTokenizer) -> LexicalIndex:
    if name == "pinyin":
        return PinyinIndex(normalized_docs, tokenizer)
    if name == "char":
        return CharNgramIndex(normalized_docs)
    if name == "bm25":
        return BM25Index(normalized_docs, tokenizer)
    raise ValueError(f"未知的检索器 {name!r} / unknown retriever {name!r}; known: dense, {', '.join(LEXICAL_NAMES)}")
