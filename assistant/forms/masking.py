"""How collected values are shown back to the citizen: personal numbers masked, dates spelled out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.forms.spec import FieldSpec, FormSpec
from assistant.forms.validators import format_date, parse_day
from nlu.extractors.idcard import mask_id
from nlu.extractors.phone import mask_phone

NOT_GIVEN = "（未填写）"


def display(field: FieldSpec, value: Any) -> str:
    if value is None or value == "":
        return NOT_GIVEN
    if field.kind == "id_number":
        return mask_id(str(value))
    if field.kind == "phone":
        return mask_phone(str(value))
    if field.kind == "working_day":
        day = parse_day(value)
        if day is None:
            return str(value)
        clock = str(value)[10:].strip()  # "2026-12-02 09:00-12:00" -> "09:00-12:00"
        return f"{format_date(day)} {clock}" if clock else format_date(day)
    return str(value)


def masked_slots(form: FormSpec, slots: Mapping[str, Any]) -> dict[str, str]:
    """Every field of ``form`` as displayed; safe to put in logs and in response templates."""
    return {f.slot: display(f, slots.get(f.slot)) for f in form.fields}


def summary(form: FormSpec, slots: Mapping[str, Any]) -> str:
    return "\n".join(f"{f.label}：{display(f, slots.get(f.slot))}" for f in form.fields)
