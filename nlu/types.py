"""The values the NLU pipeline produces. Frozen, so a parse can be shared and cached safely."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entity:
    """An entity found in the *original* text: ``start``/``end`` index the text the citizen typed."""

    entity: str
    value: Any
    start: int
    end: int
    text: str
    extractor: str
    confidence: float = 1.0
    role: str | None = None
    group: str | None = None
    # A recognised but unusable value (e.g. an ID number whose check digit is wrong) stays an entity,
    # so the dialogue can tell the citizen *why* it was rejected instead of silently ignoring it.
    valid: bool = True
    error: str | None = None
    # extractor-specific detail, e.g. a time's grain and interval, as Rasa's duckling ``additional_info``
    additional_info: dict[str, Any] | None = None

    def to_rasa(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "confidence_entity": self.confidence,
            "extractor": self.extractor,
        }
        if self.role:
            out["role"] = self.role
        if self.group:
            out["group"] = self.group
        if self.additional_info:
            out["additional_info"] = self.additional_info
        if not self.valid:
            out["valid"] = False
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass(frozen=True)
class ParseResult:
    text: str
    intent: IntentScore
    intent_ranking: tuple[IntentScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    tokens: tuple[str, ...] = ()
    normalized_text: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def entity_values(self, name: str) -> list[Any]:
        return [e.value for e in self.entities if e.entity == name and e.valid]

    def to_rasa(self) -> dict[str, Any]:
        """Rasa's ``/model/parse`` JSON shape."""
        return {
            "text": self.text,
            "intent": {"name": self.intent.name, "confidence": self.intent.confidence},
            "entities": [e.to_rasa() for e in self.entities],
            "intent_ranking": [asdict(s) for s in self.intent_ranking],
        }
