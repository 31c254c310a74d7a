"""Responses from the domain: variations (random, seedable), slot conditions, channels, buttons, placeholders."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.domain import Button, Domain, ResponseVariation

# what a ``{slot}`` placeholder shows when the slot is empty: readable for a citizen, never a crash
MISSING_VALUE = "（未填写）"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Message:
    """A rendered response: what ``BotUttered`` carries."""

    text: str | None
    buttons: tuple[Button, ...] = ()
    image: str | None = None
    custom: Mapping[str, Any] | None = None

    def event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.buttons:
            data["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.image:
            data["image"] = self.image
        if self.custom is not None:
            data["custom"] = dict(self.custom)
        return data


def _display(value: Any) -> str:
    if value is None or value == "" or value == []:
        return MISSING_VALUE
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_display(v) for v in value)
    return str(value)


def fill(template: str, values: Mapping[str, Any]) -> str:
    """Replace ``{name}`` with ``values[name]``; an unknown or empty name shows ``MISSING_VALUE``."""
    return _PLACEHOLDER.sub(lambda m: _display(values.get(m.group(1))), template)


def _matches(variation: ResponseVariation, slots: Mapping[str, Any]) -> bool:
    return all(slots.get(c.name) == c.value for c in variation.condition)


class NLG:
    def __init__(self, domain: Domain, seed: int | None = None) -> None:
        self._domain = domain
        self._random = random.Random(seed)

    def has(self, name: str) -> bool:
        return name in self._domain.responses

    def pick(
        self, name: str, slots: Mapping[str, Any], channel: str | None = None
    ) -> ResponseVariation | None:
        """Rasa's choice: variations whose conditions hold, conditional ones first; channel-specific ones first."""
        variations = self._domain.responses.get(name)
        if not variations:
            return None
        usable = [v for v in variations if _matches(v, slots)]
        conditional = [v for v in usable if v.condition]
        candidates = conditional or [v for v in usable if not v.condition]
        by_channel = [v for v in candidates if channel is not None and v.channel == channel]
        candidates = by_channel or [v for v in candidates if v.channel is None]
        if not candidates:
            return None
        return candidates[0] if len(candidates) == 1 else self._random.choice(candidates)

    def generate(
        self, name: str, slots: Mapping[str, Any], /, channel: str | None = None, **values: Any
    ) -> Message | None:
        """The rendered response, or None when the domain has no usable variation. ``values`` override slots
        in placeholders (e.g. a masked ID number for a confirmation)."""
        variation = self.pick(name, slots, channel)
        if variation is None:
            return None
        merged = {**slots, **values}
        text = fill(variation.text, merged) if variation.text is not None else None
        buttons = tuple(Button(fill(b.title, merged), fill(b.payload, merged)) for b in variation.buttons)
        return Message(text, buttons, variation.image, variation.custom)
