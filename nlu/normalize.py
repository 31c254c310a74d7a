"""Text normalisation that remembers where every character came from.

Citizens type full-width digits, traditional characters, stray spaces and mixed-case Latin. Models see the
normalised text; entities are reported against the original, so ``Normalized.span_to_original`` maps back.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

import opencc

_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


@dataclass(frozen=True)
class Normalized:
    original: str
    text: str
    # origin[i] is the index in ``original`` of the character that produced text[i]; one extra entry at the
    # end equals len(original) so that exclusive end offsets map too.
    origin: tuple[int, ...]

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        if end <= start:
            o = self.origin[start]
            return o, o
        first = self.origin[start]
        last = self.origin[end - 1]
        # extend to the end of the original character that produced the last normalised one
        nxt = next((o for o in islice(self.origin, end, None) if o > last), len(self.original))
        return first, nxt


def _convert_chars(text: str, converter: opencc.OpenCC) -> str:
    converted = converter.convert(text)
    if len(converted) == len(text):
        return converted
    # phrase-level conversion changed the length: fall back to per-character so offsets stay exact
    return "".join(c if len(c) == 1 else ch for ch, c in ((ch, converter.convert(ch)) for ch in text))


def normalize(text: str, *, traditional_to_simplified: bool = True, lowercase: bool = True) -> Normalized:
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        folded = unicodedata.normalize("NFKC", ch)
        if ch in "\u3000\u00a0":
            folded = " "
        for f in folded:
            chars.append(f)
            origin.append(i)
    out = "".join(chars)
    if traditional_to_simplified:
        out = _convert_chars(out, _t2s())
    if lowercase:
        lowered = out.lower()
        out = lowered if len(lowered) == len(out) else "".join(c.lower() if len(c.lower()) == 1 else c for c in out)
    # collapse whitespace runs and strip, keeping the origin map aligned
    kept_chars: list[str] = []
    kept_origin: list[int] = []
    for kind, start, end in _iter_tokens(out):
        if kind == "space":
            if kept_chars and end < len(out):
                kept_chars.append(" ")
                kept_origin.append(origin[start])
        else:
            kept_chars.extend(out[start:end])
            kept_origin.extend(origin[start:end])
    kept_origin.append(len(text))
    return Normalized(original=text, text="".join(kept_chars), origin=tuple(kept_origin))


def _iter_tokens(text: str):
    pos = 0
    for m in _SPACES.finditer(text):
        if m.start() > pos:
            yield ("text", pos, m.start())
        yield ("space", m.start(), m.end())
        pos = m.end()
    if pos < len(text):
        yield ("text", pos, len(text))


def normalize_text(text: str) -> str:
    """Just the normalised string, for indexing and lookups."""
    return normalize(text).text
