"""Lexical retrievers: each scores every document against a query, so the hybrid can fuse exact scores.

Three views of the same text, measured on ../shared/eval (60 FAQ, 180 queries, question+answer documents):
- ``PinyinIndex``: TF-IDF over pinyin syllables and syllable bigrams, plus whole-word pinyin and initials.
  Citizens type ``shebao``, ``gjj`` or a homophone typo; no other retriever sees those. R@1 0.58 alone, and the
  only lexical view that still helps once fused with the dense scores (+0.07 R@1).
- ``CharNgramIndex``: TF-IDF over character 1-2-grams (R@1 0.61 alone, adds nothing on top of dense + pinyin).
- ``BM25Index``: Okapi BM25 over jieba words (R@1 0.47 alone; kept for the Chatchat-style baseline).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from rank_bm25 import BM25Okapi
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.normalize import normalize_text
from nlu.tokenizer import make_segmenter, segment


class WordSegmenter(Protocol):
    """What the lexical side needs of a tokenizer; ``nlu.tokenizer.ChineseTokenizer`` is one."""

    def words(self, text: str) -> list[str]: ...


class JiebaWords:
    """jieba with the government dictionary, cutting exactly as ``ChineseTokenizer`` does, without spaCy
    (whose import pulls in torch: ~20 s on a loaded 2-core machine, for nothing the index needs)."""

    def __init__(self) -> None:
        self._seg = make_segmenter()

    def words(self, text: str) -> list[str]:
        return [t.text for t in segment(self._seg, text)]


class LexicalIndex(Protocol):
    name: str

    def scores(self, normalized_query: str) -> np.ndarray:
        """One score per indexed document (in the order given at build time)."""
        ...


class CharNgramIndex:
    name = "char"

    def __init__(self, normalized_docs: Sequence[str], ngram_range: tuple[int, int] = (1, 2)) -> None:
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=ngram_range, sublinear_tf=True)
        self._matrix = _fit(self._vectorizer, list(normalized_docs))

    def scores(self, normalized_query: str) -> np.ndarray:
        return _sparse_scores(self._vectorizer, self._matrix, normalized_query)


class BM25Index:
    name = "bm25"

    def __init__(self, doc_words: Sequence[Sequence[str]], tokenizer: WordSegmenter) -> None:
        self._tokenizer = tokenizer
        self._bm25 = BM25Okapi([list(w) or [""] for w in doc_words] or [[""]])

    def scores(self, normalized_query: str) -> np.ndarray:
        return np.asarray(self._bm25.get_scores(content_words(normalized_query, self._tokenizer)), dtype=np.float32)

    def __getstate__(self) -> dict[str, object]:
        # the spaCy pipeline does not pickle; it is supplied again on load
        return {"_bm25": self._bm25}

    def attach(self, tokenizer: WordSegmenter) -> None:
        self._tokenizer = tokenizer


_PUNCT = re.compile(r"[\W_]+")


def content_words(normalized: str, tokenizer: WordSegmenter) -> list[str]:
    return [w for w in tokenizer.words(normalized) if w.strip() and not _PUNCT.fullmatch(w)]
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


@lru_cache(maxsize=200_000)
def _word_syllables(word: str) -> tuple[str, ...]:
    # words repeat across documents: converting each once makes indexing 10k passages take seconds, not minutes
    import pypinyin

    return tuple(p for p in pypinyin.lazy_pinyin(word) if p.isascii() and p.isalpha())


def query_pinyin_tokens(normalized: str) -> list[str]:
    """Syllables of Chinese runs and of Latin pinyin runs, plus ``#run`` for each Latin run (``#gjj``)."""
    tokens: list[str] = []
    for m in _LATIN_OR_NOT.finditer(normalized):
        run = m.group()
        if run[0].isascii() and run[0].isalpha():
            tokens.extend(split_syllables(run) or [])
            tokens.append("#" + run)
        else:
            tokens.extend(_word_syllables(run))
    return tokens


def doc_pinyin_tokens(normalized: str, words: Callable[[str], list[str]]) -> list[str]:
    """Syllables of each word, and for Chinese words also ``#`` + full pinyin and ``#`` + initials, which a
    query's Latin run (``#shebaoka``, ``#gjj``) matches."""
    tokens: list[str] = []
    for word in words(normalized):
        if word.isascii():
            if word.isalpha():
                tokens.extend(split_syllables(word) or [])
                tokens.append("#" + word)
            continue
        syl = _word_syllables(word)
        tokens.extend(syl)
        if len(word) >= 2 and len(syl) == len(word):
            tokens.append("#" + "".join(syl))
            tokens.append("#" + "".join(s[0] for s in syl))
    return tokens


def _with_bigrams(tokens: Sequence[str]) -> list[str]:
    plain = [t for t in tokens if not t.startswith("#")]
    return [*tokens, *(a + "_" + b for a, b in zip(plain, plain[1:], strict=False))]


def _fit(vectorizer: TfidfVectorizer, docs: list[Any]) -> Any:
    """The document-term matrix in CSC form, or an empty (n, 0) one when no document has a term."""
    try:
        return vectorizer.fit_transform(docs).tocsc()
    except ValueError:  # "empty vocabulary": an empty knowledge base, or only punctuation
        return None if not docs else np.zeros((len(docs), 0), np.float32)


def _sparse_scores(vectorizer: TfidfVectorizer, matrix_csc: Any, query: Any) -> np.ndarray:
    if matrix_csc is None or matrix_csc.shape[1] == 0:
        return np.zeros(0 if matrix_csc is None else matrix_csc.shape[0], np.float32)
    # a query has a few dozen terms: multiply only those columns (CSC slicing), not the whole matrix
    row = vectorizer.transform([query]).tocsr()
    if row.nnz == 0:
        return np.zeros(matrix_csc.shape[0], np.float32)
    return _column_scores(matrix_csc, row.indices, row.data)


def _column_scores(matrix_csc: Any, columns: np.ndarray, weights: np.ndarray, *, count: bool = False) -> np.ndarray:
    """``matrix[:, columns] @ weights`` straight from the CSC arrays: scipy's slicing and sklearn's
    per-call validation cost ~3 ms a query at 10k documents, this ~0.1 ms."""
    n = matrix_csc.shape[0]
    starts, ends = matrix_csc.indptr[columns], matrix_csc.indptr[columns + 1]
    lengths = ends - starts
    if not lengths.sum():
        return np.zeros(n, np.float32)
    picks = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
    values = np.repeat(weights, lengths) if count else matrix_csc.data[picks] * np.repeat(weights, lengths)
    return np.bincount(matrix_csc.indices[picks], weights=values, minlength=n).astype(np.float32)


def token_tfidf(tokens: Sequence[str], vocabulary: dict[str, int], idf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns, weights) of a token list as ``TfidfVectorizer(sublinear_tf=True, norm="l2").transform`` gives
    them, without its per-call overhead; unknown tokens are dropped, as sklearn drops them."""
    counts: dict[int, int] = {}
    for t in tokens:
        j = vocabulary.get(t)
        if j is not None:
            counts[j] = counts.get(j, 0) + 1
    if not counts:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    columns = np.fromiter(counts, np.int64, len(counts))
    weights = (1.0 + np.log(np.fromiter(counts.values(), np.float64, len(counts)))) * idf[columns]
    return columns, weights / max(float(np.linalg.norm(weights)), 1e-12)


class PinyinIndex:
    name = "pinyin"

    def __init__(self, doc_tokens: Sequence[Sequence[str]]) -> None:
        """``doc_tokens``: ``doc_pinyin_tokens`` with bigrams, as ``analyze`` returns them."""
        self._vectorizer = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
        self._matrix = _fit(self._vectorizer, [list(t) for t in doc_tokens])

    def scores(self, normalized_query: str) -> np.ndarray:
        if self._matrix is None or self._matrix.shape[1] == 0:
            return np.zeros(0 if self._matrix is None else self._matrix.shape[0], np.float32)
        vocabulary, idf = self._terms()
        columns, weights = token_tfidf(_with_bigrams(query_pinyin_tokens(normalized_query)), vocabulary, idf)
        return _column_scores(self._matrix, columns, weights)

    def coverage(self, normalized_query: str, docs: np.ndarray) -> tuple[np.ndarray, float]:
        """Per document in ``docs``: the share of the query's distinct pinyin tokens (syllables, bigrams,
        whole words) it contains; and the share of query tokens no document has (out of vocabulary).
        A query whose words the best match lacks is likely about something the knowledge base does not hold."""
        tokens = set(_with_bigrams(query_pinyin_tokens(normalized_query)))
        if not tokens or self._matrix is None or self._matrix.shape[1] == 0:
            return np.zeros(len(docs), np.float32), 1.0
        vocabulary, _ = self._terms()
        columns = np.asarray([vocabulary[t] for t in tokens if t in vocabulary], np.int64)
        oov = 1.0 - len(columns) / len(tokens)
        if not len(columns):
            return np.zeros(len(docs), np.float32), oov
        present = _column_scores(self._matrix, columns, np.ones(len(columns)), count=True)
        return (present[docs] / len(tokens)).astype(np.float32), oov

    def _terms(self) -> tuple[dict[str, int], np.ndarray]:
        # derived from the fitted vectorizer, so indexes saved before this existed load unchanged
        terms = self.__dict__.get("_terms_cache")
        if terms is None:
            terms = (self._vectorizer.vocabulary_, np.asarray(self._vectorizer.idf_, np.float64))
            self.__dict__["_terms_cache"] = terms
        return terms

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_terms_cache"}


def _identity(tokens: list[str]) -> list[str]:
    # a module-level function (not a lambda) so the fitted vectorizer pickles
    return tokens


LEXICAL_NAMES = ("pinyin", "char", "bm25")


ANALYZER_VERSION = "2"  # part of the analysis cache key: bump when an analysis below changes


def analyze(name: str, raw_text: str, tokenizer: WordSegmenter) -> list[str]:
    """What a lexical index keeps of one document: normalised text (char), words (bm25) or pinyin tokens."""
    normalized = normalize_text(raw_text)
    if name == "char":
        return [normalized]
    if name == "bm25":
        return content_words(normalized, tokenizer)
    if name == "pinyin":
        return _with_bigrams(doc_pinyin_tokens(normalized, tokenizer.words))
    raise ValueError(f"未知的检索器 {name!r} / unknown retriever {name!r}; known: dense, {', '.join(LEXICAL_NAMES)}")


class AnalysisCache(Protocol):
    def get_tokens(self, keys: Sequence[str]) -> dict[str, list[str]]: ...

    def put_tokens(self, items: dict[str, list[str]]) -> None: ...


def analyze_all(
    name: str, raw_texts: Sequence[str], tokenizer: WordSegmenter, cache: AnalysisCache | None
) -> list[list[str]]:
    """Analyses of ``raw_texts``, from the cache where the same text was analysed before (re-indexing after
    one edit then tokenizes one document, not all of them)."""
    if cache is None:
        return [analyze(name, t, tokenizer) for t in raw_texts]
    keys = [hashlib.sha256(f"{name}\x00{ANALYZER_VERSION}\x00{t}".encode()).hexdigest() for t in raw_texts]
    found = cache.get_tokens(list(dict.fromkeys(keys)))
    fresh = {k: analyze(name, t, tokenizer) for k, t in zip(keys, raw_texts, strict=True) if k not in found}
    if fresh:
        cache.put_tokens(fresh)
        found.update(fresh)
    return [found[k] for k in keys]


def build_lexical(
    name: str, raw_docs: Sequence[str], tokenizer: WordSegmenter, cache: AnalysisCache | None = None
) -> LexicalIndex:
    analysed = analyze_all(name, raw_docs, tokenizer, cache)
    if name == "pinyin":
        return PinyinIndex(analysed)
    if name == "char":
        return CharNgramIndex([a[0] for a in analysed])
    return BM25Index(analysed, tokenizer)
