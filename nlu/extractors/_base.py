"""What every rule-based extractor shares: checked settings and entities built from normalised spans."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nlu.normalize import Normalized
from nlu.types import Entity

DIGITS = "0123456789"


def check_settings(component: str, given: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Reject settings a component does not know, naming them, so a typo in config.yml is not ignored."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(
            f"{component}: unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def make_entity(
    doc: Normalized,
    start: int,
    end: int,
    *,
    entity: str,
    value: Any,
    extractor: str,
    valid: bool = True,
    error: str | None = None,
    additional_info: dict[str, Any] | None = None,
    confidence: float = 1.0,
) -> Entity:
    """An entity found at ``doc.text[start:end]``, reported against the text the citizen typed."""
    o_start, o_end = doc.span_to_original(start, end)
    return Entity(
        entity=entity,
        value=value,
        start=o_start,
        end=o_end,
        text=doc.original[o_start:o_end],
        extractor=extractor,
        confidence=confidence,
        valid=valid,
        error=error,
        additional_info=additional_info,
    )


class Covered:
    """Which characters of a text other entities already hold; linear, so long messages stay cheap."""

    def __init__(self, length: int, spans: Iterable[tuple[int, int]] = ()) -> None:
        self._mask = bytearray(length)
        for start, end in spans:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        self._mask[start:end] = b"\x01" * (end - start)

    def hits(self, span: tuple[int, int]) -> bool:
        return self._mask.find(1, span[0], span[1]) != -1
