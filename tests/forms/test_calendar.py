from __future__ import annotations

from datetime import date

import pytest

from assistant.calendar import CalendarError, load_holiday_calendar, parse_holidays

CAL = load_holiday_calendar()


@pytest.mark.parametrize(
    ("day", "working", "reason"),
    [
        (date(2026, 11, 27), True, "工作日"),  # a Friday
        (date(2026, 11, 28), False, "周末"),
        (date(2026, 10, 5), False, "国庆节假期"),  # a Monday inside National Day
        (date(2026, 10, 10), True, "调休上班日"),  # a Saturday make-up day
        (date(2026, 2, 14), True, "调休上班日"),
        (date(2026, 2, 23), False, "春节假期"),
        (date(2025, 1, 26), True, "调休上班日"),
        (date(2025, 10, 8), False, "国庆节、中秋节假期"),
        (date(2027, 2, 8), False, "春节假期"),
    ],
)
def test_status(day: date, working: bool, reason: str) -> None:
    status = CAL.status(day)
    assert (status.working, status.reason_zh) == (working, reason)


def test_next_working_day_skips_holidays_and_weekends() -> None:
    # National Day 2026: Oct 1–7 off, Oct 8 (Thursday) is the first working day
    assert CAL.next_working_day(date(2026, 10, 1)) == date(2026, 10, 8)
    # Friday 2026-02-13 → the Saturday make-up day, exclusive of the start
    assert CAL.next_working_day(date(2026, 2, 13), inclusive=False) == date(2026, 2, 14)
    assert CAL.next_working_day(date(2026, 11, 27)) == date(2026, 11, 27)


def test_covers_2025_to_2027() -> None:
    assert {2025, 2026, 2027} <= CAL.years
    assert CAL.covers(date(2027, 12, 31)) and not CAL.covers(date(2028, 1, 1))
    assert 2027 in CAL.provisional_years


def test_malformed_file_is_rejected() -> None:
    with pytest.raises(CalendarError, match="both holiday and workday"):
        parse_holidays(
            {
                2030: {
                    "holidays": [{"name": "x", "from": "2030-01-01", "to": "2030-01-02"}],
                    "workdays": ["2030-01-02"],
                }
            }
        )
    with pytest.raises(CalendarError, match="not a date"):
        parse_holidays({2030: {"workdays": ["soon"]}})
