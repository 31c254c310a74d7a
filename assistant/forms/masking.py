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
        return format_date(day) if day else str(value)
    return str(value)


def masked_slots(form: FormSpec, slots: Mapping[str, Any]) -> dict[str, str]:
    """Every field of ``form`` as displayed; safe to put in logs and in response templates."""
    return {f.slot: display(f, slots.get(f.slot)) for f in form.fields}


def summary(form: FormSpec, slots: Mapping[str, Any]) -> str:
    return "\n".join(f"{f.label}：{display(f, slots.get(f.slot))}" for f in form.fields)
