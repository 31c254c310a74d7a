"""Working days in mainland China: weekends, public holidays and 调休 make-up working days.

The holiday table is data (``resources/holidays_cn.yml``), loaded once and passed to whoever needs it, so a new
year's State Council notice is a data change, not a code change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

DEFAULT_HOLIDAYS_FILE = Path(__file__).parent / "resources" / "holidays_cn.yml"

# a guard against looping forever on a corrupt table (e.g. every day marked a holiday)
_MAX_SCAN_DAYS = 60


class CalendarError(ValueError):
    """The holiday file is malformed, or a date lies outside the years it covers."""


@dataclass(frozen=True)
class DayOff:
    name: str
    name_en: str


@dataclass(frozen=True)
class DayStatus:
    """Why a day is or is not a working day, in words a citizen understands."""

    day: date
    working: bool
    reason_zh: str
    reason_en: str


@dataclass(frozen=True)
class HolidayCalendar:
    holidays: Mapping[date, DayOff]
    makeup_workdays: frozenset[date]
    years: frozenset[int]
    provisional_years: frozenset[int] = frozenset()

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def status(self, day: date) -> DayStatus:
        off = self.holidays.get(day)
        if off is not None:
            return DayStatus(day, False, f"{off.name}假期", f"a public holiday ({off.name_en})")
        if day in self.makeup_workdays:
            return DayStatus(day, True, "调休上班日", "a make-up working day")
        if day.weekday() >= 5:
            return DayStatus(day, False, "周末", "a weekend")
        return DayStatus(day, True, "工作日", "a working day")

    def is_working_day(self, day: date) -> bool:
        return self.status(day).working

    def next_working_day(self, day: date, *, inclusive: bool = True) -> date:
        """The first working day on or after ``day`` (strictly after when ``inclusive`` is false)."""
        current = day if inclusive else day + timedelta(days=1)
        for _ in range(_MAX_SCAN_DAYS):
            if self.is_working_day(current):
                return current
            current += timedelta(days=1)
        raise CalendarError(f"no working day within {_MAX_SCAN_DAYS} days of {day.isoformat()}")


def _as_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise CalendarError(f"{where}: not a date: {value!r}") from None


def parse_holidays(data: Mapping[Any, Any], source: str = "holidays") -> HolidayCalendar:
    holidays: dict[date, DayOff] = {}
    workdays: set[date] = set()
    years: set[int] = set()
    provisional: set[int] = set()
    for raw_year, section in data.items():
        year = int(raw_year)
        years.add(year)
        if not isinstance(section, Mapping):
            raise CalendarError(f"{source}: {year}: expected a mapping")
        if section.get("provisional"):
            provisional.add(year)
        for i, item in enumerate(section.get("holidays") or []):
            where = f"{source}: {year}.holidays[{i}]"
            start, end = _as_date(item.get("from"), where), _as_date(item.get("to"), where)
            if end < start or start.year != year:
                raise CalendarError(f"{where}: bad range {start}..{end}")
            off = DayOff(str(item["name"]), str(item.get("name_en", item["name"])))
            day = start
            while day <= end:
                holidays[day] = off
                day += timedelta(days=1)
        for i, raw in enumerate(section.get("workdays") or []):
            workdays.add(_as_date(raw, f"{source}: {year}.workdays[{i}]"))
    clash = workdays & holidays.keys()
    if clash:
        raise CalendarError(f"{source}: dates both holiday and workday: {sorted(clash)}")
    return HolidayCalendar(holidays, frozenset(workdays), frozenset(years), frozenset(provisional))


def load_holiday_calendar(path: Path | None = None) -> HolidayCalendar:
    file = path or DEFAULT_HOLIDAYS_FILE
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, Mapping):
        raise CalendarError(f"{file}: the top level must map years to sections")
    return parse_holidays(data, str(file))
