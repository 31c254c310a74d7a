"""Slot values and slot mappings with Rasa 3 semantics (what ``action_extract_slots`` does after each message).

Mappings are tried in order; the first that applies fills the slot. A ``from_entity`` mapping only sees entities
the intent uses, with exactly the mapping's role and group (an entity with a role does not fill a mapping
without one). ``conditions`` restrict a mapping to an active loop and, optionally, its requested slot. Inside a
form, an entity mapped by several of the form's slots fills only the requested one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.domain import Domain, SlotDef, SlotMapping
from assistant.events import SlotSet
from assistant.tracker import REQUESTED_SLOT, Tracker

_TRUE = {"true", "yes", "y", "1", "是", "对", "好", "确认", "要", "需要"}
_FALSE = {"false", "no", "n", "0", "否", "不", "不是", "不要", "不需要", "取消"}


def coerce(slot: SlotDef, value: Any) -> Any:
    """The value as the slot's type holds it; a value that cannot be read as that type is kept as given so a
    validator can reject it with a reason."""
    if value is None:
        return None
    kind = slot.type
    if kind == "list":
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and kind != "any":
        value = value[-1] if value else None
        if value is None:
            return None
    if kind == "text":
        return value if isinstance(value, str) else str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return value
    if kind == "float":
        if isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if kind == "categorical":
        text = str(value).strip()
        for v in slot.values:
            if v == text or v.lower() == text.lower():
                return v
        return value
    return value


def _intent_name(message: Mapping[str, Any]) -> str | None:
    return (message.get("intent") or {}).get("name")


def intent_is_desired(mapping: SlotMapping, intent: str | None) -> bool:
    if mapping.intent and intent not in mapping.intent:
        return False
    return not (mapping.not_intent and intent in mapping.not_intent)


def conditions_hold(mapping: SlotMapping, tracker: Tracker) -> bool:
    if not mapping.conditions:
        return True
    for c in mapping.conditions:
        if c.active_loop is None:
            if tracker.active_loop is None:
                return True
        elif c.active_loop == tracker.active_loop and (
            c.requested_slot is None or c.requested_slot == tracker.requested_slot
        ):
            return True
    return False


def entity_values(mapping: SlotMapping, message: Mapping[str, Any], domain: Domain) -> list[Any]:
    """Values of the entities this mapping takes, in message order."""
    intent = domain.intent(_intent_name(message) or "")
    out = []
    for e in message.get("entities") or []:
        if e.get("entity") != mapping.entity or e.get("valid") is False:
            continue
        if not intent.uses_entity(e["entity"]):
            continue
        if e.get("role") != mapping.role or e.get("group") != mapping.group:
            continue
        out.append(e.get("value"))
    return out


def _unique_in_form(slot: str, mapping: SlotMapping, tracker: Tracker, domain: Domain) -> bool:
    """False when the active form maps this entity to several of its slots and ``slot`` is not requested."""
    form = domain.forms.get(tracker.active_loop or "")
    if form is None or slot not in form.required_slots or tracker.requested_slot == slot:
        return True
    for other in form.required_slots:
        if other == slot or other not in domain.slots:
            continue
        for m in domain.slots[other].mappings:
            if m.type == "from_entity" and (m.entity, m.role, m.group) == (mapping.entity, mapping.role, mapping.group):
                return False
    return True


def mapping_value(slot: SlotDef, mapping: SlotMapping, tracker: Tracker, domain: Domain) -> Any:
    """The value ``mapping`` gives ``slot`` for the latest message, or None when it does not apply."""
    message = tracker.latest_message
    intent = _intent_name(message)
    if mapping.type == "custom" or not intent_is_desired(mapping, intent):
        return None
    if mapping.type == "from_trigger_intent":
        # fills on the message that activates the form, i.e. while that form is not yet the active loop
        loops = {c.active_loop for c in mapping.conditions}
        return mapping.value if tracker.active_loop not in loops else None
    if not conditions_hold(mapping, tracker):
        return None
    if mapping.type == "from_entity":
        if not _unique_in_form(slot.name, mapping, tracker, domain):
            return None
        values = entity_values(mapping, message, domain)
        if not values:
            return None
        return values if slot.type == "list" else values[-1]
    if mapping.type == "from_intent":
        return mapping.value
    if mapping.type == "from_text":
        text = message.get("text")
        return text if text else None
    return None


def extract_slot_events(domain: Domain, tracker: Tracker) -> list[SlotSet]:
    """SlotSet events for every slot a mapping fills from the latest user message (changed values only)."""
    events: list[SlotSet] = []
    for slot in domain.slots.values():
        if slot.name == REQUESTED_SLOT:
            continue
        for mapping in slot.mappings:
            value = mapping_value(slot, mapping, tracker, domain)
            if value is None:
                continue
            value = coerce(slot, value)
            if tracker.get_slot(slot.name) != value:
                events.append(SlotSet(slot.name, value))
            break
    return events
