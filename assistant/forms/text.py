"""Folding messy citizen input for matching: width, traditional characters, case, spaces and punctuation."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from nlu.normalize import normalize_text

_PUNCT = re.compile(r"[\s，,。.！!？?；;：:、~～\"'“”‘’（）()【】\[\]<>《》…—\-_/]+")


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """``"  雲湖區！"`` -> ``"云湖区"``: what two spellings of the same answer have in common."""
    return _PUNCT.sub("", normalize_text(text))


def clean(text: str) -> str:
    """A free-text answer as stored: full-width folded, spaces collapsed, case and script kept."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
