"""Chinese numerals: a tiny exact parser for the small numbers of dates and clock times, cn2an for the rest."""

from __future__ import annotations

import cn2an

CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
CN_NUMERAL_CHARS = "".join(CN_DIGITS) + "十百千万亿"


def small_int(s: str) -> int | None:
    """``十五`` -> 15, ``二十三`` -> 23, ``零五`` -> 5, ``二〇二六`` -> 2026, ``07`` -> 7; None when not a numeral.

    Only what dates and clocks need (no 百/千): a hand-written parser is exact here and ~10x faster than cn2an.
    """
    if not s:
        return None
    if s.isascii():
        return int(s) if s.isdigit() else None
    if s.count("十") > 1:
        return None
    if "十" in s:
        left, _, right = s.partition("十")
        if len(left) > 1 or len(right) > 1:
            return None
        tens = CN_DIGITS.get(left, -1) if left else 1
        ones = CN_DIGITS.get(right, -1) if right else 0
        return None if tens < 0 or ones < 0 else tens * 10 + ones
    value = 0
    for ch in s:
        d = CN_DIGITS.get(ch)
        if d is None:
            return None
        value = value * 10 + d
    return value


def to_number(s: str) -> int | float | None:
    """Arabic, Chinese or mixed numerals (``三千五``, ``1.5万``, ``两万``) to a number; None when not one."""
    try:
        value = cn2an.cn2an(s, "smart")
    except (ValueError, KeyError, IndexError):
        return None
    if isinstance(value, float) and value.is_integer() and "." not in s and "点" not in s:
        return int(value)
    return value
