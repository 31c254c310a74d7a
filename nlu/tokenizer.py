"""jieba segmentation inside a spaCy ``zh`` pipeline, with a dictionary of our own.

Each pipeline gets its own ``jieba.Tokenizer`` rather than the module-level default, so the words one model adds
(government terms, entity values from its training data) never leak into another model in the same process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jieba

if TYPE_CHECKING:
    from spacy.language import Language

jieba.setLogLevel(logging.WARNING)

# Shipped with the package: terms of Chinese public services that jieba's general dictionary splits badly.
GOV_DICT = Path(str(resources.files("nlu") / "resources" / "gov_dict.txt"))


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


def make_segmenter(user_dicts: Iterable[Path] = (GOV_DICT,), words: Iterable[str] = ()) -> jieba.Tokenizer:
    seg = jieba.Tokenizer()
    seg.initialize()
    for path in user_dicts:
        if Path(path).exists():
            seg.load_userdict(str(path))
    for word in words:
        word = word.strip()
        if word:
            # a high frequency makes jieba keep the whole word even where a split scores better
            seg.add_word(word, freq=max(seg.suggest_freq(word, tune=False), 1000))
    return seg


def make_nlp(user_dicts: Iterable[Path] = (GOV_DICT,), words: Iterable[str] = ()) -> Language:
    # imported here: spaCy pulls in torch through thinc (+240 MB RSS), which a process that only needs
    # jieba segmentation (the NLU interpreter, see ``segment``) should not pay for
    import spacy

    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    nlp.tokenizer.jieba_seg = make_segmenter(user_dicts, words)  # type: ignore[attr-defined]
    return nlp


class ChineseTokenizer:
    """Tokens with offsets into the text given; spaces are dropped."""

    def __init__(self, nlp: Language | None = None) -> None:
        self.nlp = nlp or make_nlp()

    def tokenize(self, text: str) -> list[Token]:
        doc = self.nlp.make_doc(text)
        return [Token(t.text, t.idx, t.idx + len(t.text)) for t in doc if not t.is_space]

    def words(self, text: str) -> list[str]:
        return [t.text for t in self.tokenize(text)]


def segment(seg: jieba.Tokenizer, text: str) -> list[Token]:
    """The tokens spaCy's ``zh`` jieba segmenter makes of ``text`` (same ``cut`` call), without building a Doc."""
    tokens: list[Token] = []
    pos = 0
    for word in seg.cut(text, cut_all=False):
        if not word:
            continue
        start = text.find(word, pos)
        if start < 0:  # jieba never rewrites text; kept as a guard so offsets can never drift
            start = pos
        pos = start + len(word)
        if not word.isspace():
            tokens.append(Token(word, start, pos))
    return tokens


def split_at(tokens: Iterable[Token], boundaries: Iterable[int]) -> list[Token]:
    """Split tokens so that every offset in ``boundaries`` falls between two tokens.

    Annotated entities must span whole tokens; where the segmenter still joins an entity with its
    neighbour, splitting here is what Rasa users wanted instead of "Misaligned entity annotation".
    """
    cuts = sorted(set(boundaries))
    out: list[Token] = []
    for tok in tokens:
        inner = [c for c in cuts if tok.start < c < tok.end]
        start = tok.start
        for c in [*inner, tok.end]:
            out.append(Token(tok.text[start - tok.start : c - tok.start], start, c))
            start = c
    return out
