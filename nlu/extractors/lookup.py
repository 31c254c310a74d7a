"""Lookup tables (district -> 朝阳区, 海淀区 ...; service -> 社保卡补办 ...) as an entity extractor.

Table values are normalised like the text, so 社保卡補辦 or full-width input still matches, and the entity's
value is the table's own spelling. The longest match wins; on a tie the earlier one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nlu.extractors._base import check_settings, make_entity
from nlu.normalize import Normalized, normalize_text
from nlu.types import Entity

# suffixes a place name may be written without (朝阳 for 朝阳区), longest first
PLACE_SUFFIXES = ("自治县", "自治州", "街道", "新区", "区", "县", "市", "省", "镇", "乡")


def strip_place_suffix(value: str) -> str | None:
    for suffix in PLACE_SUFFIXES:
        if value.endswith(suffix) and len(value) - len(suffix) >= 2:
            return value[: -len(suffix)]
    return None


class LookupEntityExtractor:
    name = "LookupEntityExtractor"
    _settings = ("tables", "allow_suffixless")

    def __init__(
        self,
        *,
        tables: dict[str, list[str]] | None = None,
        allow_suffixless: list[str] | None = None,
        **settings: Any,
    ) -> None:
        check_settings(self.name, settings, self._settings)
        # normalised surface form -> (entity, canonical value); the first table naming a form keeps it
        self.index: dict[str, tuple[str, str]] = {}
        for entity, values in (tables or {}).items():
            if isinstance(values, str):
                raise ValueError(f"{self.name}: tables['{entity}'] must be a list of values, not a string")
            for value in values:
                key = normalize_text(str(value))
                if key:
                    self.index.setdefault(key, (entity, str(value)))
        known = {canonical for _, canonical in self.index.values()}
        for value in allow_suffixless or ():
            if value not in known:
                raise ValueError(f"{self.name}: allow_suffixless names '{value}', which is in no table")
            short = strip_place_suffix(normalize_text(value))
            if short is None:
                raise ValueError(f"{self.name}: allow_suffixless '{value}' has no place suffix to drop")
            self.index.setdefault(short, self.index[normalize_text(value)])
        self.lengths = sorted({len(k) for k in self.index}, reverse=True)

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        text = doc.text
        found: list[tuple[int, int]] = []
        for start in range(len(text)):
            for length in self.lengths:
                if start + length > len(text):
                    continue
                if text[start : start + length] in self.index and not _splits_ascii_word(
                    text, start, start + length
                ):
                    found.append((start, start + length))
                    break  # the longest at this start
        chosen: list[tuple[int, int]] = []
        for start, end in sorted(found, key=lambda s: (s[0] - s[1], s[0])):
            if all(end <= s or start >= e for s, e in chosen):
                chosen.append((start, end))
        out: list[Entity] = []
        for start, end in sorted(chosen):
            entity, value = self.index[text[start:end]]
            out.append(make_entity(doc, start, end, entity=entity, value=value, extractor=self.name))
        return out


def _is_ascii_word(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _splits_ascii_word(text: str, start: int, end: int) -> bool:
    """``id`` must not match inside ``paid``: Latin words still need boundaries, Chinese characters do not."""
    before = start > 0 and _is_ascii_word(text[start - 1]) and _is_ascii_word(text[start])
    after = end < len(text) and _is_ascii_word(text[end]) and _is_ascii_word(text[end - 1])
    return before or after
