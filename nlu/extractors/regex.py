"""Rasa ``regex:`` patterns from training data as an entity extractor, made to work on Chinese text.

Patterns match the normalised text (simplified, half-width, lower-cased), case-insensitively unless
``case_sensitive`` (then the text is normalised without lower-casing); the value is the
matched original text with full-width folded, so an identifier keeps its letter case. Rasa projects
often write ``\\b\\d{6}\\b``; Python's ``\\b`` sees no boundary between 编 and 1 (both are word characters), so
``\\b`` is rewritten to a boundary between an ASCII letter/digit and anything else. Traditional characters in a
pattern are converted like the text is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import datetime
from typing import Any

import opencc

from nlu.extractors._base import check_settings, make_entity
from nlu.normalize import Normalized, normalize
from nlu.types import Entity

_ASCII_WORD = "[0-9a-zA-Z_]"
ASCII_BOUNDARY = rf"(?:(?<={_ASCII_WORD})(?!{_ASCII_WORD})|(?<!{_ASCII_WORD})(?={_ASCII_WORD}))"


def chinese_aware(pattern: str) -> str:
    r"""Replace ``\b`` outside character classes (inside one it is a backspace) with ``ASCII_BOUNDARY``."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            pair = pattern[i : i + 2]
            out.append(ASCII_BOUNDARY if pair == r"\b" and not in_class else pair)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            # a ']' right after '[' or '[^' is a literal member, not the end of the class
            j = i + 1 + (pattern[i + 1 : i + 2] == "^")
            if pattern[j : j + 1] == "]":
                out.append(pattern[i : j + 1])
                i = j + 1
                continue
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


class RegexEntityExtractor:
    name = "RegexEntityExtractor"
    # the settings of Rasa's RegexEntityExtractor, except use_lookup_tables (see below)
    _settings = ("patterns", "use_word_boundaries", "case_sensitive", "use_regexes")

    def __init__(
        self,
        *,
        patterns: list[dict[str, str]] | None = None,
        use_word_boundaries: bool = True,
        case_sensitive: bool = False,
        use_regexes: bool = True,
        **settings: Any,
    ) -> None:
        if settings.get("use_lookup_tables"):
            raise ValueError(
                f"{self.name}: use_lookup_tables is not supported here; add LookupEntityExtractor to the pipeline"
            )
        settings.pop("use_lookup_tables", None)
        check_settings(self.name, settings, self._settings)
        t2s = opencc.OpenCC("t2s")
        self.case_sensitive = bool(case_sensitive)
        flags = 0 if self.case_sensitive else re.IGNORECASE
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        for i, item in enumerate((patterns or []) if use_regexes else []):
            if not isinstance(item, dict) or not {"name", "pattern"} <= set(item):
                raise ValueError(f"{self.name}: patterns[{i}] needs 'name' and 'pattern', got {item!r}")
            source = t2s.convert(item["pattern"])
            if use_word_boundaries:
                source = chinese_aware(source)
            try:
                compiled = re.compile(source, flags)
            except re.error as err:
                raise ValueError(f"{self.name}: pattern '{item['name']}' does not compile: {err}") from None
            self.patterns.append((item["name"], compiled))

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        out: list[Entity] = []
        if self.case_sensitive and self.patterns:
            # the same normalisation without lower-casing; offsets map the same way
            doc = normalize(doc.original, lowercase=False)
        for entity, pattern in self.patterns:
            for m in pattern.finditer(doc.text):
                if m.end() > m.start():
                    found = make_entity(
                        doc, m.start(), m.end(), entity=entity, value=None, extractor=self.name
                    )
                    # the value keeps the citizen's letter case (case numbers like YZ-20260001), not full width
                    out.append(replace(found, value=unicodedata.normalize("NFKC", found.text)))
        return out
