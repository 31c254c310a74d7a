"""When staff are on duty: a weekly schedule in Asia/Shanghai, public holidays and 调休 make-up days from the
holiday table, plus extra closures. Pure: every answer is a function of the time it is asked about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from assistant.calendar import HolidayCalendar
from assistant.handoff.config import WEEKDAYS, ServiceHoursConfig

Span = tuple[time, time]


def _spans(items: list[str]) -> tuple[Span, ...]:
    out = []
    for item in items:
        start, end = item.split("-")
        h2, m2 = map(int, end.split(":"))
        out.append((time.fromisoformat(start), time(23, 59, 59) if h2 == 24 else time(h2, m2)))
    return tuple(sorted(out))


@dataclass(frozen=True)
class ServiceHours:
    config: ServiceHoursConfig
    holidays: HolidayCalendar | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    def spans_on(self, day: date) -> tuple[Span, ...]:
        c = self.config
        if day.isoformat() in c.closed_dates:
            return ()
        if self.holidays is not None and c.follow_holidays and self.holidays.covers(day):
            # the calendar decides public holidays and 调休 days only; an ordinary weekend keeps the weekly
            # schedule (a centre open on Saturday mornings stays open on them)
            if day in self.holidays.holidays:
                return ()
            if day in self.holidays.makeup_workdays and day.weekday() >= 5:  # a weekend day worked as a weekday
                return _spans(c.makeup_day_hours)
        return _spans(c.weekly.get(WEEKDAYS[day.weekday()], []))

    def is_open(self, now: datetime) -> bool:
        if self.config.always_open:
            return True
        local = now.astimezone(self.tz)
        t = local.time()
        return any(start <= t < end for start, end in self.spans_on(local.date()))

    def next_open(self, now: datetime, max_days: int = 60) -> datetime | None:
        """The next opening time after ``now`` (``now`` itself when open)."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.tz)
        for offset in range(max_days + 1):
            day = local.date() + timedelta(days=offset)
            for start, _end in self.spans_on(day):
                candidate = datetime.combine(day, start, self.tz)
                if candidate > local:
                    return candidate
        return None

    def describe(self) -> str:
        """The weekday schedule in words, e.g. 工作日 09:00-12:00、13:30-17:30."""
        weekly = self.config.weekly
        names = dict(zip(WEEKDAYS, ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))
        groups: dict[tuple[str, ...], list[str]] = {}
        for d in WEEKDAYS:
            if weekly.get(d):
                groups.setdefault(tuple(weekly[d]), []).append(d)
        parts = []
        for spans, days in groups.items():
            label = "工作日" if days == list(WEEKDAYS[:5]) else "、".join(names[d] for d in days)
            parts.append(f"{label} {'、'.join(spans)}")
        return "；".join(parts) + ("（法定节假日除外）" if self.config.follow_holidays else "")
