"""Chinese time expressions resolved against a reference ``now`` (Asia/Shanghai), rule-based and fast.

An expression is an optional date part followed by an optional time-of-day part (``下周三`` + ``上午``,
``明天`` + ``下午3点半``). Deterministic choices for ambiguous input, each covered by a test:

- ``周五`` (no 这/下): the next Friday, today included, unless today is Friday and the time asked for is over,
  then next week's. ``这周五`` is always the Friday of the current Monday-first week, even if it has passed.
- ``3月5号`` without a year: this year, or next year when March 5 is before today (today itself counts).
  ``6月`` alone likewise. A time without any date (``下午3点``) is today, or tomorrow when it is over.
- a bare hour 1–6 without 上午/下午 (``两点``) is afternoon (14:00): offices are closed at 2 a.m.
- parts of the day: 凌晨 00–06, 早上 06–09, 上午 09–12, 中午 12–14, 下午 12–18, 傍晚 17–19, 晚上 18–24.
  ``晚上12点`` is midnight at the end of that day; ``晚上1点`` is 01:00 of the next day.
- ``月初`` = days 1–10, ``月中`` = days 11–20 (value the 15th), ``月底`` = the last day of the month.
- ``12.1`` is a date only when followed by 号/日 or a part of the day; ``5号`` alone is not a time (window 5,
  house 5), ``这个月5号`` is.
- a clock range (``下午1点到5点``, ``15:00-17:00``) is one interval on the first time's day; the second time takes
  the first's part of the day when it has none. Date ranges (``12月1日到5日``) are two entities.
- an impossible date (``2月30日``) is still reported, with ``valid=False`` and a bilingual error.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from nlu.extractors._base import check_settings, make_entity
from nlu.extractors.cn_numerals import small_int
from nlu.normalize import Normalized
from nlu.types import Entity

INVALID_DATE = "日期不存在，请检查年月日 / No such date; please check the year, month and day"

_NUM = r"(?:[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3})"
_YEAR = r"(?:[0-9]{4}|[零〇一二三四五六七八九]{4})"
_WEEK_PREFIX = r"(下下个?|下个?|上上个?|上个?|这个?|本)"
_WEEK_WORD = r"(?:周|星期|礼拜)"
_MONTH_REL = r"(这个月|本月|当月|下下个?月|下个?月|上个?月)"

_REL_DAYS = {
    "大前天": (-3, None),
    "前天": (-2, None),
    "昨天": (-1, None),
    "昨日": (-1, None),
    "昨晚": (-1, "晚上"),
    "今天": (0, None),
    "今日": (0, None),
    "今儿": (0, None),
    "今早": (0, "早上"),
    "今晚": (0, "晚上"),
    "明天": (1, None),
    "明日": (1, None),
    "明儿": (1, None),
    "明早": (1, "早上"),
    "明晚": (1, "晚上"),
    "后天": (2, None),
    "大后天": (3, None),
}
_WEEKDAYS = {
    "一": 0,
    "二": 1,
    "三": 2,
    "四": 3,
    "五": 4,
    "六": 5,
    "日": 6,
    "天": 6,
    "1": 0,
    "2": 1,
    "3": 2,
    "4": 3,
    "5": 4,
    "6": 5,
    "7": 6,
}
_WEEK_OFFSETS = {"下下": 2, "下": 1, "上上": -2, "上": -1, "这": 0, "本": 0}
_MONTH_OFFSETS = {
    "这个月": 0,
    "本月": 0,
    "当月": 0,
    "下月": 1,
    "下个月": 1,
    "下下月": 2,
    "下下个月": 2,
    "上月": -1,
    "上个月": -1,
}
_YEAR_OFFSETS = {"去年": -1, "今年": 0, "明年": 1, "后年": 2}
# part of a month -> (first day, last day or None for the month's last, value day)
_MONTH_PARTS = {
    "初": (1, 10, 1),
    "上旬": (1, 10, 1),
    "中": (11, 20, 15),
    "中旬": (11, 20, 15),
    "下旬": (21, None, 21),
    "底": (None, None, None),
    "末": (None, None, None),
}

# part of the day -> (start hour, end hour)
_PERIODS = {
    "凌晨": (0, 6),
    "清晨": (6, 9),
    "早上": (6, 9),
    "早晨": (6, 9),
    "上午": (9, 12),
    "中午": (12, 14),
    "下午": (12, 18),
    "傍晚": (17, 19),
    "晚上": (18, 24),
    "晚间": (18, 24),
    "夜里": (18, 24),
    "夜间": (18, 24),
}
_PERIOD_ALIASES = {"早": "早上", "晚": "晚上"}


class _InvalidDate(ValueError):
    pass


@dataclass(frozen=True)
class DatePart:
    first: date
    last: date  # inclusive; equal to first for a single day
    grain: str  # "day" | "week" | "month" | "year"
    # "week": an unprefixed weekday, moved a week on when today's occurrence is over
    roll: str | None = None
    period: str | None = None  # implied by 今晚/明早


@dataclass(frozen=True)
class TimeOfDay:
    period: str | None
    hour: int | None  # 0..28 after the period shift (24+ is the next day)
    minute: int | None


@dataclass(frozen=True)
class Resolved:
    start: datetime
    end: datetime  # exclusive; equal to start for an instant
    grain: str
    interval: bool


# --- date rules: each a pattern anchored at a position and a function of (match, today) -------------------------


def _mk_date(y: int, m: int, d: int) -> date:
    try:
        return date(y, m, d)
    except ValueError as exc:
        raise _InvalidDate(str(exc)) from exc


def _month_shift(today: date, months: int) -> tuple[int, int]:
    idx = today.year * 12 + today.month - 1 + months
    return idx // 12, idx % 12 + 1


def _month_span(y: int, m: int, part: str | None, day: int | None) -> DatePart:
    if not 1 <= m <= 12:
        raise _InvalidDate(f"month {m}")
    last_day = calendar.monthrange(y, m)[1]
    if day is not None:
        d = _mk_date(y, m, day)
        return DatePart(d, d, "day")
    if part is None:
        return DatePart(date(y, m, 1), date(y, m, last_day), "month")
    lo, hi, value = _MONTH_PARTS[part]
    if lo is None:  # 底/末: the last day
        d = date(y, m, last_day)
        return DatePart(d, d, "day")
    # a span of days whose value is the day people mean (月中 -> the 15th)
    return DatePart(date(y, m, value or lo), date(y, m, hi or last_day), "day")


def _rel_day(m: re.Match[str], today: date) -> DatePart:
    offset, period = _REL_DAYS[m.group(1)]
    d = today + timedelta(days=offset)
    return DatePart(d, d, "day", period=period)


def _week_monday(today: date, weeks: int) -> date:
    return today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)


def _weekday(m: re.Match[str], today: date) -> DatePart:
    prefix, wd = m.group(1), _WEEKDAYS[m.group(2)]
    if prefix is None:
        d = today + timedelta(days=(wd - today.weekday()) % 7)
        return DatePart(d, d, "day", roll="week")
    d = _week_monday(today, _WEEK_OFFSETS[prefix.rstrip("个")]) + timedelta(days=wd)
    return DatePart(d, d, "day")


def _weekend(m: re.Match[str], today: date) -> DatePart:
    prefix = m.group(1)
    if prefix is None:
        # the coming weekend; on a Sunday, the weekend that is still on
        sat = (
            today - timedelta(days=1)
            if today.weekday() == 6
            else today + timedelta(days=(5 - today.weekday()) % 7)
        )
    else:
        sat = _week_monday(today, _WEEK_OFFSETS[prefix.rstrip("个")]) + timedelta(days=5)
    return DatePart(sat, sat + timedelta(days=1), "day")


def _week(m: re.Match[str], today: date) -> DatePart:
    monday = _week_monday(today, _WEEK_OFFSETS[m.group(1).rstrip("个")])
    return DatePart(monday, monday + timedelta(days=6), "week")


def _num(s: str | None) -> int | None:
    return small_int(s) if s else None


def _year(m: re.Match[str], today: date) -> int:
    year_s, year_rel = m.group(1), m.group(2)
    year = small_int(year_s) if year_s else today.year + _YEAR_OFFSETS.get(year_rel or "今年", 0)
    if year is None or not 1900 <= year <= 2200:
        raise _InvalidDate("year")
    return year


def _calendar_date(m: re.Match[str], today: date) -> DatePart:
    month_s, day_s, month_part = m.group(3, 4, 5)
    year = _year(m, today)
    month, day = _num(month_s), _num(day_s)
    if month is None or (day_s and day is None):
        raise _InvalidDate("numeral")
    part = _month_span(year, month, month_part, day)
    if m.group(1) is None and m.group(2) is None and part.last < today:
        # no year given and already past this year: the citizen means the next one
        part = _month_span(year + 1, month, month_part, day)
    return part


def _year_only(m: re.Match[str], today: date) -> DatePart:
    year = _year(m, today)
    if m.group(3) in ("底", "末"):
        return DatePart(date(year, 12, 31), date(year, 12, 31), "day")
    if m.group(3) == "初":
        return DatePart(date(year, 1, 1), date(year, 1, 31), "month")
    return DatePart(date(year, 1, 1), date(year, 12, 31), "year")


def _numeric_date(m: re.Match[str], today: date) -> DatePart:
    d = _mk_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return DatePart(d, d, "day")


def _short_date(m: re.Match[str], today: date) -> DatePart:
    month, day = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12:
        raise _InvalidDate("month")
    d = _mk_date(today.year, month, day)
    if d < today:
        d = _mk_date(today.year + 1, month, day)
    return DatePart(d, d, "day")


def _relative_month(m: re.Match[str], today: date) -> DatePart:
    y, mo = _month_shift(today, _MONTH_OFFSETS[m.group(1)])
    return _month_span(y, mo, m.group(3), _num(m.group(2)))


def _month_part(m: re.Match[str], today: date) -> DatePart:
    word = m.group(1)
    if word == "年初":
        return DatePart(date(today.year, 1, 1), date(today.year, 1, 31), "month")
    if word in ("年底", "年末"):
        return DatePart(date(today.year, 12, 31), date(today.year, 12, 31), "day")
    part = _month_span(today.year, today.month, word[1], None)
    if part.last < today:
        # 月初 on the 20th: the start of next month, as for any unqualified expression
        y, mo = _month_shift(today, 1)
        part = _month_span(y, mo, word[1], None)
    return part


_DateRule = tuple[re.Pattern[str], Callable[[re.Match[str], date], DatePart]]
_DATE_RULES: list[_DateRule] = [
    (re.compile("(" + "|".join(sorted(_REL_DAYS, key=len, reverse=True)) + ")"), _rel_day),
    (re.compile(_WEEK_PREFIX + "?" + _WEEK_WORD + "([一二三四五六日天1-7])(?![次遍])"), _weekday),
    (re.compile(_WEEK_PREFIX + "?" + "(?:周末|礼拜六日)"), _weekend),
    (re.compile(_WEEK_PREFIX + _WEEK_WORD + "(?![一二三四五六日天1-7末])"), _week),
    (
        re.compile(
            rf"(?:({_YEAR})年|(今年|明年|去年|后年))?({_NUM})月份?"
            rf"(?:({_NUM})(?:日|号)?(?![0-9])|(上旬|中旬|下旬|初|中|底|末))?"
        ),
        _calendar_date,
    ),
    (re.compile(rf"(?:({_YEAR})年|(今年|明年|去年|后年))(底|末|初)?"), _year_only),
    (re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})(?:日|号)?(?![0-9])"), _numeric_date),
    (re.compile(r"([0-9]{1,2})[./]([0-9]{1,2})(?:日|号|(?=凌晨|早上|上午|中午|下午|晚上))"), _short_date),
    # 上个月底, 上个月月底, 下个月的15号
    (re.compile(_MONTH_REL + rf"(?:的?(?:({_NUM})(?:日|号)|月?(上旬|中旬|下旬|初|中|底|末)))?"), _relative_month),
    (re.compile("(月初|月中|月底|月末|年初|年底|年末)"), _month_part),
]

# --- time of day ----------------------------------------------------------------------------------------------

_MINUTE_CN = r"[零〇一二三四五六七八九十]"
_CLOCK = (
    rf"({_NUM})(?:(?:点|时)钟?(?:(半)|(一刻|三刻)|整|({_NUM})分|([0-9]{{2}}|{_MINUTE_CN}{{2,3}}))?"
    r"|:([0-5][0-9]))"
    # "1点5倍", "三点五万": a number, not a time
    r"(?![0-9零〇一二两三四五六七八九十万千百亿倍%元块个])"
)
_PERIOD_NAMES = "|".join(sorted(_PERIODS, key=len, reverse=True))
_TOD = re.compile(rf"(?:({_PERIOD_NAMES})(?:的(?=[0-9零〇一二两三四五六七八九十]))?)?(?:{_CLOCK})?")
_TOD_SHORT = re.compile(rf"(早|晚)(?:{_CLOCK})")


def _shift_hour(period: str | None, hour: int) -> int:
    if period is None:
        return hour + 12 if 1 <= hour <= 6 else hour
    if period in ("下午", "傍晚"):
        return hour + 12 if hour < 12 else hour
    if period == "中午":
        return hour + 12 if hour <= 3 else hour
    if period in ("晚上", "晚间", "夜里", "夜间"):
        if hour == 12 or hour <= 4:
            return hour % 12 + 24
        return hour + 12 if hour < 12 else hour
    if period == "凌晨" and hour == 12:
        return 0
    return hour


def _clock(m: re.Match[str], first: int, period: str | None, explicit_period: bool) -> TimeOfDay | None:
    hour_s, half, quarter, minute_s, minute2_s, colon_min = m.group(
        first, first + 1, first + 2, first + 3, first + 4, first + 5
    )
    if hour_s is None:
        return TimeOfDay(period, None, None)
    hour = small_int(hour_s)
    minute = None
    if half:
        minute = 30
    elif quarter:
        minute = 15 if quarter == "一刻" else 45
    elif minute_s or minute2_s:
        minute = small_int(minute_s or minute2_s)
    elif colon_min:
        minute = int(colon_min)
    if hour is None or hour > 24 or (minute is not None and minute > 59):
        return None
    if "整" in m.group(0):
        minute = 0
    if hour_s == "一" and minute is None and not explicit_period:
        return None  # 快一点, 早一点: "a bit", not one o'clock
    return TimeOfDay(period, _shift_hour(period, hour), minute)


def _time_of_day(text: str, pos: int, implied_period: str | None) -> tuple[int, TimeOfDay] | None:
    m = _TOD.match(text, pos)
    if m and m.end() > pos:
        period = m.group(1) or implied_period
        tod = _clock(m, 2, period, m.group(1) is not None)
        if tod is not None and (tod.hour is not None or m.group(1)):
            return m.end(), tod
        if tod is None:
            return None
    m = _TOD_SHORT.match(text, pos)
    if m:
        tod = _clock(m, 2, _PERIOD_ALIASES[m.group(1)], False)
        if tod is not None:
            return m.end(), tod
    return None


# --- resolution against now -----------------------------------------------------------------------------------


def _at(day: date, now: datetime, hours: int = 0, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(hours=hours, minutes=minutes)


def resolve(date_part: DatePart | None, tod: TimeOfDay | None, now: datetime) -> Resolved:
    today = now.date()
    day = date_part.first if date_part else today
    roll = date_part.roll if date_part else "day"
    period = (tod.period if tod else None) or (date_part.period if date_part else None)
    for _ in range(2):
        if tod is not None and tod.hour is not None:
            start = _at(day, now, tod.hour, tod.minute or 0)
            res = Resolved(start, start, "minute" if tod.minute is not None else "hour", False)
            over = start <= now
        elif period is not None:
            lo, hi = _PERIODS[period]
            res = Resolved(_at(day, now, lo), _at(day, now, hi), "hour", True)
            over = res.end <= now
        else:
            assert date_part is not None
            last = date_part.last + (day - date_part.first)
            res = Resolved(
                _at(day, now),
                _at(last + timedelta(days=1), now),
                date_part.grain,
                date_part.last != date_part.first,
            )
            over = res.end <= now
        # an unqualified weekday or time of day means its next occurrence: move on once when today's is over
        if not (over and day == today and roll):
            return res
        day += timedelta(days=7 if roll == "week" else 1)
    return res


# --- the extractor --------------------------------------------------------------------------------------------

_TRIGGERS = frozenset(
    "0123456789零〇一二两三四五六七八九十"
    + "".join(k[0] for k in list(_REL_DAYS) + list(_PERIODS) + list(_MONTH_OFFSETS) + list(_YEAR_OFFSETS))
    + "周星礼这本下上月年早晚"
)
_NUMERAL_CHARS = frozenset("0123456789零〇一二两三四五六七八九十百千万亿.")


@dataclass(frozen=True)
class TimeMatch:
    start: int
    end: int
    resolved: Resolved | None  # None: an impossible date


# what may follow "<part of day>好" for it to be a greeting; 上午好吗 / 上午好不好 ask whether a time suits
_GREETING_TAIL = re.compile(r"好(?:呀|啊|哇|哦|噢)?(?:$|[\s，,。.！!~～、；;：:]|[我您你请想要问麻在])")


def _is_greeting(text: str, end: int) -> bool:
    """A bare part of day with no date or clock time, followed by 好 as in 早上好 / 下午好啊，我想…"""
    return _GREETING_TAIL.match(text, end) is not None


def find_times(text: str, now: datetime) -> list[TimeMatch]:
    """Time expressions in normalised ``text``, leftmost-longest, resolved against ``now``."""
    out: list[TimeMatch] = []
    today = now.date()
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch not in _TRIGGERS or (ch in _NUMERAL_CHARS and pos > 0 and text[pos - 1] in _NUMERAL_CHARS):
            pos += 1
            continue
        best_end, best_date, invalid = pos, None, False
        for pattern, rule in _DATE_RULES:
            m = pattern.match(text, pos)
            if m is None or m.end() <= best_end:
                continue
            try:
                best_date, invalid = rule(m, today), False
            except _InvalidDate:
                best_date, invalid = None, True
            best_end = m.end()
        tod_at = best_end
        if best_end > pos and tod_at < n and text[tod_at] in "的 ":
            tod_at += 1
        tod = None if invalid else _time_of_day(text, tod_at, best_date.period if best_date else None)
        if tod is None and best_end == pos:
            pos += 1
            continue
        end = tod[0] if tod else best_end
        if best_end == pos and tod is not None and tod[1].hour is None and _is_greeting(text, end):
            pos = end  # 早上好 / 晚上好: a greeting, not a time
            continue
        if (
            end < n
            and ch in _NUMERAL_CHARS
            and text[end - 1] in _NUMERAL_CHARS
            and text[end] in _NUMERAL_CHARS
        ):
            pos += 1  # a run of digits that merely starts like a date
            continue
        resolved = None if invalid else resolve(best_date, tod[1] if tod else None, now)
        if resolved is not None and tod is not None and tod[1].hour is not None:
            end, resolved = _range_end(text, end, tod[1], resolved, now)
        out.append(TimeMatch(pos, end, resolved))
        pos = end
    return out


_RANGE = re.compile(r" ?(?:到|至|~|-|—) ?")


def _range_end(text: str, end: int, first: TimeOfDay, start: Resolved, now: datetime) -> tuple[int, Resolved]:
    """``下午1点到5点``: one interval on the first time's day; the second time inherits its part of the day."""
    conn = _RANGE.match(text, end)
    second = _time_of_day(text, conn.end(), first.period) if conn else None
    if second is None or second[1].hour is None:
        return end, start
    until = _at(start.start.date(), now, second[1].hour, second[1].minute or 0)
    if until <= start.start:
        return end, start
    return second[0], Resolved(start.start, until, start.grain, True)


class ChineseTimeExtractor:
    name = "ChineseTimeExtractor"
    _settings = ("entity",)

    def __init__(self, *, entity: str = "time", **settings: Any) -> None:
        check_settings(self.name, settings, self._settings)
        self.entity = entity

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        if now.tzinfo is None:
            raise ValueError(f"{self.name}: now must be timezone-aware")
        out: list[Entity] = []
        for t in find_times(doc.text, now):
            if t.resolved is None:
                out.append(
                    make_entity(
                        doc,
                        t.start,
                        t.end,
                        entity=self.entity,
                        value=None,
                        extractor=self.name,
                        valid=False,
                        error=INVALID_DATE,
                        additional_info={"grain": "day"},
                    )
                )
                continue
            r = t.resolved
            info: dict[str, Any] = {"grain": r.grain}
            if r.interval:
                info |= {"from": r.start.isoformat(), "to": r.end.isoformat()}
            out.append(
                make_entity(
                    doc,
                    t.start,
                    t.end,
                    entity=self.entity,
                    value=r.start.isoformat(),
                    extractor=self.name,
                    additional_info=info,
                )
            )
        return out
