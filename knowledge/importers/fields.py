"""Parsing of metadata values shared by the importers (dates, tag lists)."""

from __future__ import annotations

import re
from datetime import date, datetime

from knowledge.importers.types import ImportFormatError

_DATE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_LIST_SEP = re.compile(r"[\n|；;，,、]+")


def parse_date(value: object, file: str, location: str, field_name: str) -> date | None:
    """ISO dates, ``2024/1/5``, ``2024年1月5日``; empty means none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    m = _DATE.match(str(value))
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
    raise ImportFormatError(
        file,
        location,
        f"{field_name} 不是有效日期：{value!r}",
        f"{field_name} is not a valid date: {value!r}",
    )


def split_list(value: object, separators: re.Pattern[str] = _LIST_SEP) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(p.strip() for p in separators.split(str(value)) if p.strip())
