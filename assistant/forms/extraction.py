"""Candidate field values in the latest message, before validation.

The engine has already applied the domain's slot mappings (Rasa's ``action_extract_slots``); this adds what a
service form needs beyond them: typed entities matched to fields by kind (an ID number fills the ID field
whatever the slot is called), button payloads, district names inside a sentence, rejected entities (so the
citizen hears *why*), and digits typed without context for the field being asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.forms.spec import _KIND_BY_ENTITY, FieldSpec, FormSpec
from assistant.forms.text import fold
from assistant.forms.validators import match_value


@dataclass(frozen=True)
class Candidate:
    raw: Any
    info: Mapping[str, Any] = field(default_factory=dict)
    # the whole message, from a from_text mapping: only trusted when nothing more specific was found
    from_text: bool = False
    # mentioned in passing ("云湖区" inside an address): fills an empty field, never replaces a value
    incidental: bool = False


@dataclass(frozen=True)
class RejectedEntity:
    """An entity the NLU found but flagged invalid, e.g. an ID number with a wrong check digit."""

    raw: Any
    error: str | None


@dataclass
class Extraction:
    candidates: dict[str, Candidate] = field(default_factory=dict)
    rejected: dict[str, RejectedEntity] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.candidates and not self.rejected

    @property
    def nothing_typed(self) -> bool:
        """No value beyond the whole message as free text or a passing mention: "不办了" typed where a name
        is asked is still "不办了"."""
        return not self.rejected and all(c.from_text or c.incidental for c in self.candidates.values())


_DIGIT_RUN = re.compile(r"[0-9０-９][0-9０-９ \-xX]{5,}")


def _field_for_kind(form: FormSpec, kind: str, requested: str | None) -> FieldSpec | None:
    fields = [f for f in form.fields if f.kind == kind]
    if not fields:
        return None
    for f in fields:
        if f.slot == requested:
            return f
    # several fields of one kind (two phones): only the one being asked is unambiguous
    return fields[0] if len(fields) == 1 else None


def extract(
    form: FormSpec,
    message: Mapping[str, Any],
    engine_fills: Mapping[str, Any],
    requested: str | None,
) -> Extraction:
    text = str(message.get("text") or "")
    out = Extraction()
    for slot, value in engine_fills.items():
        if form.field(slot) is not None and value is not None:
            out.candidates[slot] = Candidate(
                value, from_text=isinstance(value, str) and value.strip() == text.strip()
            )
    for e in _joined_times(list(message.get("entities") or [])):
        name = str(e.get("entity"))
        direct = form.field(name)  # a button payload /inform{"district": "云湖区"} names the slot itself
        target = direct or (
            _field_for_kind(form, _KIND_BY_ENTITY[name], requested) if name in _KIND_BY_ENTITY else None
        )
        if target is None:
            continue
        if e.get("valid") is False:
            out.rejected[target.slot] = RejectedEntity(e.get("text") or e.get("value"), e.get("error"))
            out.candidates.pop(target.slot, None)
            continue
        if e.get("value") is None:
            continue
        out.candidates[target.slot] = Candidate(e["value"], dict(e.get("additional_info") or {}))
        out.rejected.pop(target.slot, None)
    key = fold(text)
    for f in form.fields:
        if f.kind != "lookup" or f.slot in out.candidates:
            continue
        # a district named anywhere in the message ("住在云湖区"), for whichever lookup field lists it
        if f.slot == requested or any(len(k) >= 2 and k in key for k in f.synonyms):
            value = match_value(f, text)
            if value is not None:
                # the whole message being a district is an answer, not a passing mention
                incidental = f.slot != requested and key not in f.synonyms
                out.candidates[f.slot] = Candidate(value, incidental=incidental)
    req = form.field(requested) if requested else None
    if req is not None and req.slot not in out.candidates and req.slot not in out.rejected:
        if req.kind == "choice":
            value = match_value(req, text)
            if value is not None:
                out.candidates[req.slot] = Candidate(value)
        elif req.kind in ("id_number", "phone"):
            # digits typed with no words around them are not always recognised as an entity; validating them
            # still tells the citizen what is wrong ("手机号码应为11位")
            runs = [m.group().strip() for m in _DIGIT_RUN.finditer(text)]
            if len(runs) == 1:
                out.candidates[req.slot] = Candidate(runs[0])
    if req is not None and req.kind == "text" and getattr(out.candidates.get(req.slot), "from_text", False):
        # a free-text answer such as an address names a district; that mention is part of the answer
        for f in form.fields:
            c = out.candidates.get(f.slot)
            if f.kind == "lookup" and c is not None and not c.from_text and str(c.raw) in text:
                out.candidates[f.slot] = replace(c, incidental=True)
    specific = [s for s, c in out.candidates.items() if not (c.from_text or c.incidental)] + list(
        out.rejected
    )
    if specific:
        # "我叫张三，电话139…": the whole message is not the answer to a free-text field
        for slot in [s for s, c in out.candidates.items() if c.from_text]:
            del out.candidates[slot]
    return out


def _joined_times(entities: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """ "12月3日9点半" arrives as a day and a time of day: one appointment, the day's date at that time."""
    out: list[Mapping[str, Any]] = []
    for e in entities:
        prev = out[-1] if out else None
        info = e.get("additional_info") or {}
        if (
            prev is not None
            and e.get("entity") == prev.get("entity") == "time"
            and (prev.get("additional_info") or {}).get("grain") == "day"
            and info.get("grain") in ("hour", "minute")
            and isinstance(prev.get("value"), str)
            and isinstance(e.get("value"), str)
            and e.get("start", 0) - prev.get("end", 0) <= 1
        ):
            day, clock = prev["value"][:10], e["value"][10:]
            out[-1] = {**e, "value": day + clock, "start": prev.get("start")}
            continue
        out.append(e)
    return out


def free_text_candidate(req: FieldSpec | None, text: str) -> Candidate | None:
    """The message as the answer to a free-text field that is being asked."""
    if req is None or req.kind not in ("text", "name", "number") or not text.strip():
        return None
    return Candidate(text, from_text=True)
