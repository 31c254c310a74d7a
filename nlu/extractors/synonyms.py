"""Entity values to canonical values (社保卡 -> 社会保障卡), as Rasa's ``synonym:`` items and EntitySynonymMapper."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from nlu.extractors._base import check_settings
from nlu.normalize import Normalized, normalize_text
from nlu.types import Entity


class EntitySynonymMapper:
    name = "EntitySynonymMapper"
    _settings = ("synonyms",)

    def __init__(self, *, synonyms: dict[str, str] | None = None, **settings: Any) -> None:
        check_settings(self.name, settings, self._settings)
        # keys normalised like text, so 社保卡 / 社保卡 typed in traditional or full width map the same way
        self.synonyms: dict[str, str] = {}
        for surface, canonical in (synonyms or {}).items():
            if not isinstance(canonical, str):
                raise ValueError(f"{self.name}: synonym for '{surface}' must be a string, got {canonical!r}")
            self.synonyms[normalize_text(str(surface))] = canonical

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        return []  # maps the values others found; it finds nothing itself

    def map(self, entities: list[Entity]) -> list[Entity]:
        out: list[Entity] = []
        for e in entities:
            canonical = self.synonyms.get(normalize_text(e.value)) if isinstance(e.value, str) else None
            if canonical is None or canonical == e.value:
                out.append(e)
                continue
            info = {**(e.additional_info or {}), "synonym_of": e.value}
            out.append(replace(e, value=canonical, additional_info=info))
        return out
