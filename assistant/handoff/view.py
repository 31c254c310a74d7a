"""What staff see of a conversation: the whole transcript (bot answers with their citations, detected intents,
handoff transitions, notes, delivery reports) and the current form with its fields — personal numbers masked.

``reveal_item`` gives the unmasked text of one entry; the console only calls it for authorised roles and audits
every call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from assistant.domain import Domain
from assistant.events import BotUttered, CustomEvent, Event, UserUttered
from assistant.forms.action import PAUSED_SLOT
from assistant.forms.masking import display
from assistant.forms.spec import form_spec
from assistant.handoff import state as st
from assistant.tracker import Tracker
from nlu.extractors.idcard import mask_id
from nlu.extractors.phone import mask_phone

# 18-digit ID numbers (last may be X), 15-digit old ones; mainland mobiles; landlines with area code
_ID = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:19|20)[0-9]{2}[01][0-9][0-3][0-9]{4}[0-9Xx](?![0-9])|(?<![0-9])[1-9][0-9]{14}(?![0-9])")
_PHONE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9][- ]?[0-9]{4}[- ]?[0-9]{4}(?![0-9])|(?<![0-9])0[1-9][0-9]{1,2}-[0-9]{7,8}(?![0-9])")


def _fold(text: str) -> str:
    """Full-width digits and letters to ASCII, one character for one, so spans found here fit the original."""
    out = []
    for ch in text:
        n = unicodedata.normalize("NFKC", ch)
        out.append(n if len(n) == 1 else ch)
    return "".join(out)


def mask_text(text: str) -> str:
    """Free text with ID numbers and phone numbers masked (``1101**********1234``, ``139****5678``)."""
    if not text:
        return text
    folded = _fold(text)
    spans: list[tuple[int, int, str]] = []
    for m in _ID.finditer(folded):
        spans.append((m.start(), m.end(), mask_id(m.group())))
    for m in _PHONE.finditer(folded):
        if not any(s < m.end() and m.start() < e for s, e, _ in spans):
            spans.append((m.start(), m.end(), mask_phone(m.group())))
    for start, end, masked in sorted(spans, reverse=True):
        text = text[:start] + masked + text[end:]
    return text


def _entities(parse: dict[str, Any], mask: Callable[[str], str]) -> list[dict[str, Any]]:
    out = []
    for e in parse.get("entities") or []:
        value = e.get("value")
        kind = str(e.get("entity"))
        if isinstance(value, str):
            if kind in ("id_number", "id_card"):
                value = mask_id(value) if mask is mask_text else value
            elif kind in ("phone", "phone_number"):
                value = mask_phone(value) if mask is mask_text else value
            else:
                value = mask(value)
        out.append({"entity": kind, "value": value})
    return out


def _identity(text: str) -> str:
    return text


def transcript_item(index: int, e: Event, mask: Callable[[str], str]) -> dict[str, Any] | None:
    if isinstance(e, UserUttered):
        parse = e.parse_data or {}
        intent = parse.get("intent") or {}
        return {
            "index": index, "kind": "user", "text": mask(e.text or ""), "ts": e.timestamp, "channel": e.input_channel,
            "intent": {"name": intent.get("name"), "confidence": intent.get("confidence")} if intent else None,
            "entities": _entities(parse, mask),
        }
    if isinstance(e, BotUttered):
        data = e.data or {}
        agent = (data.get("custom") or {}).get("handoff", {}).get("agent") if isinstance(data.get("custom"), dict) else None
        kind = "agent" if e.metadata.get("handoff_agent") else "bot"
        return {
            "index": index, "kind": kind, "text": mask(e.text or ""), "ts": e.timestamp,
            "citations": data.get("citations") or [], "buttons": data.get("buttons") or [],
            "action": e.metadata.get("utter_action"), "agent": agent,
        }
    if isinstance(e, CustomEvent) and e.name in (st.HANDOFF, st.NOTE, st.DELIVERY):
        data = dict(e.data)
        if "text" in data and isinstance(data["text"], str):
            data["text"] = mask(data["text"])
        return {"index": index, "kind": {st.HANDOFF: "handoff", st.NOTE: "note", st.DELIVERY: "delivery"}[e.name],
                "ts": e.timestamp, **data}
    return None


def form_view(tracker: Tracker, domain: Domain, reveal: bool = False) -> dict[str, Any] | None:
    name = tracker.active_loop or tracker.get_slot(PAUSED_SLOT)
    if not name or name not in domain.forms:
        return None
    spec = form_spec(domain, name)
    fields = []
    for f in spec.fields:
        value = tracker.get_slot(f.slot)
        shown = (None if value is None else str(value)) if reveal else (display(f, value) if value not in (None, "") else None)
        fields.append({"slot": f.slot, "label": f.label, "label_en": f.label_en, "kind": f.kind,
                       "value": shown, "filled": value not in (None, "")})
    return {"name": spec.name, "title": spec.title, "title_en": spec.title_en,
            "active": tracker.active_loop == name, "requested_slot": tracker.requested_slot, "fields": fields}


def conversation_view(tracker: Tracker, domain: Domain) -> dict[str, Any]:
    items = [x for i, e in enumerate(tracker.events) if (x := transcript_item(i, e, mask_text)) is not None]
    intents = [
        {"index": x["index"], "name": x["intent"]["name"], "confidence": x["intent"]["confidence"]}
        for x in items if x["kind"] == "user" and x.get("intent") and x["intent"].get("name")
    ]
    return {
        "conversation_id": tracker.conversation_id,
        "channel": tracker.state.latest_input_channel,
        "state": st.state_of(tracker),
        "paused": tracker.paused,
        "transcript": items,
        "intents": intents,
        "form": form_view(tracker, domain),
    }


def reveal_item(tracker: Tracker, domain: Domain, index: int | None) -> dict[str, Any] | None:
    """The unmasked transcript entry ``index``, or the unmasked form when ``index`` is None."""
    if index is None:
        return form_view(tracker, domain, reveal=True)
    if not 0 <= index < len(tracker.events):
        return None
    return transcript_item(index, tracker.events[index], _identity)
