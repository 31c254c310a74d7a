"""Numbers and money amounts in Arabic, Chinese or mixed numerals (三千五, 两万, 1.5万, 百分之五, 5000元).

Digits that belong to an ID number, a phone number or a time expression are not numbers: this extractor finds
those spans itself (cheap regexes and the time parser) so it is right even when run alone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from nlu.extractors._base import Covered, check_settings, make_entity
from nlu.extractors.chinese_time import find_times
from nlu.extractors.cn_numerals import to_number
from nlu.extractors.idcard import find_id_spans
from nlu.extractors.phone import find_phone_spans
from nlu.normalize import Normalized
from nlu.types import Entity

_CN = "零〇一二两三四五六七八九十百千万亿"
_MULTIPLIERS = {"百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000, "万亿": 1_000_000_000_000}
_NUMBER = re.compile(
    rf"百分之(?P<pct_cn>[{_CN}0-9.]+)"
    r"|(?<![0-9.,])(?P<ar>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)(?![0-9])"
    r"(?P<mult>万亿|亿|万|千|百)?(?P<pct>%)?"
    rf"|(?P<cn>[{_CN}]+)"
)
_CURRENCY_AFTER = re.compile(r" ?(块钱|块|元|圆|人民币|rmb|yuan)")
_CURRENCY_BEFORE = re.compile(r"(¥|人民币|rmb) ?$")
# after a single Chinese numeral these make it a quantity; without one, 一 is "a"/"once" (一下, 统一, 一样)
_MEASURE = re.compile(
    r"(个|元|块|岁|人|份|次|张|天|年|月|周|星期|户|套|名|位|口|间|件|页|本|项|种|条|层|栋|号|平|米|公里|斤|小时|分钟|倍|%)"
)
# numeral words that are not numbers unless a unit follows (千万 "by all means", 万一 "in case", 十分 "very")
_IDENTIFIER_DIGITS = 10
_MAX_CN_LENGTH = 16
_IDIOMS = frozenset({"千万", "万一", "十分", "一一", "万万"})


class ChineseNumberExtractor:
    name = "ChineseNumberExtractor"
    _settings = ("amounts",)

    def __init__(self, *, amounts: bool = True, **settings: Any) -> None:
        check_settings(self.name, settings, self._settings)
        self.amounts = bool(amounts)

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        text = doc.text
        times = [(t.start, t.end) for t in find_times(text, now)]
        taken = Covered(len(text), [*find_id_spans(text), *find_phone_spans(text), *times])
        out: list[Entity] = []
        for m in _NUMBER.finditer(text):
            if taken.hits(m.span()):
                continue
            parsed = self._value(m)
            if parsed is None:
                continue
            value, is_percent = parsed
            start, end = m.span()
            entity, info = "number", None
            if is_percent:
                info = {"unit": "%", "percent": _tidy(value * 100)}
            elif self.amounts:
                after = _CURRENCY_AFTER.match(text, end)
                before = _CURRENCY_BEFORE.search(text, max(0, start - 4), start)
                if after or before:
                    entity, info = "amount", {"currency": "CNY"}
                    end = after.end() if after else end
                    start = before.start() if before and not after else start
            out.append(
                make_entity(
                    doc, start, end, entity=entity, value=value, extractor=self.name, additional_info=info
                )
            )
        return out

    @staticmethod
    def _value(m: re.Match[str]) -> tuple[int | float, bool] | None:
        text, end = m.string, m.end()
        if m.group("pct_cn"):
            value = to_number(m.group("pct_cn"))
            return None if value is None else (_tidy(value / 100), True)
        if m.group("ar"):
            digits, mult = m.group("ar").replace(",", ""), _MULTIPLIERS.get(m.group("mult") or "", 1)
            if (
                len(digits) >= _IDENTIFIER_DIGITS
                and "," not in m.group("ar")
                and mult == 1
                and not m.group("pct")
            ):
                return None  # 10+ bare digits: an order, card or case number, not a quantity
            if m.group("pct"):
                return _tidy(float(digits) / 100), True
            if "." not in digits:
                return int(digits) * mult, False  # exact: float would round long integers
            return _tidy(float(digits) * mult), False
        cn = m.group("cn")
        if len(cn) > _MAX_CN_LENGTH:
            return None  # 三三三三...: not a numeral anyone writes
        unit_follows = _MEASURE.match(text, end) or _CURRENCY_AFTER.match(text, end)
        if (len(cn) == 1 or cn in _IDIOMS) and not unit_follows:
            return None
        value = to_number(cn)
        return None if value is None else (_tidy(value), False)


def _tidy(value: int | float) -> int | float:
    """15000.0 -> 15000; keep real fractions, rounded against float noise (0.05 not 0.05000000000000001)."""
    if isinstance(value, int):
        return value
    rounded = round(value, 10)
    return int(rounded) if float(rounded).is_integer() else rounded
