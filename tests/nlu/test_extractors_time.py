from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import ChineseTimeExtractor
from nlu.normalize import normalize

TZ = ZoneInfo("Asia/Shanghai")
# a Friday afternoon
NOW = datetime(2026, 11, 27, 16, 30, tzinfo=TZ)


def times(text: str, now: datetime = NOW) -> list:
    return ChineseTimeExtractor().extract(normalize(text), now)


def one(text: str, now: datetime = NOW):
    found = times(text, now)
    assert len(found) == 1, found
    return found[0]


def iso(*args: int) -> str:
    return datetime(*args, tzinfo=TZ).isoformat()


@pytest.mark.parametrize(
    ("text", "day"),
    [("今天", 27), ("明天", 28), ("后天", 29), ("大后天", 30), ("昨天", 26), ("明日", 28)],
)
def test_relative_days(text: str, day: int) -> None:
    e = one(f"我{text}去")
    assert e.entity == "time" and e.text == text
    assert e.value == iso(2026, 11, day) and e.additional_info == {"grain": "day"}


def test_explicit_today_in_the_past_is_not_moved() -> None:
    assert one("今天下午3点").value == iso(2026, 11, 27, 15)


def test_tomorrow_half_past_three() -> None:
    e = one("明天下午3点半可以吗")
    assert e.text == "明天下午3点半"
    assert e.value == "2026-11-28T15:30:00+08:00"
    assert e.additional_info == {"grain": "minute"}


def test_next_wednesday_morning_is_an_interval() -> None:
    e = one("下周三上午")
    assert e.value == iso(2026, 12, 2, 9)
    assert e.additional_info == {"grain": "hour", "from": iso(2026, 12, 2, 9), "to": iso(2026, 12, 2, 12)}


def test_friday_afternoon_on_a_friday_afternoon_is_today() -> None:
    assert one("周五下午").value == iso(2026, 11, 27, 12)


def test_friday_afternoon_after_the_afternoon_is_next_week() -> None:
    evening = datetime(2026, 11, 27, 18, 30, tzinfo=TZ)
    assert one("周五下午", evening).value == iso(2026, 12, 4, 12)
    assert one("周五上午").value == iso(2026, 12, 4, 9)


def test_bare_friday_on_a_friday_is_today() -> None:
    assert one("周五").value == iso(2026, 11, 27)
    assert one("星期五").value == iso(2026, 11, 27)


def test_this_week_is_the_calendar_week_even_when_past() -> None:
    assert one("这周五").value == iso(2026, 11, 27)
    assert one("本周一").value == iso(2026, 11, 23)
    assert one("这周日").value == iso(2026, 11, 29)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("下下周一", (2026, 12, 7)),
        ("下周日", (2026, 12, 6)),
        ("上周三", (2026, 11, 18)),
        ("礼拜天", (2026, 11, 29)),
    ],
)
def test_weeks(text: str, expected: tuple[int, int, int]) -> None:
    assert one(text).value == iso(*expected)


def test_month_day_without_year_rolls_to_next_year_once_passed() -> None:
    assert one("3月5号").value == iso(2027, 3, 5)
    assert one("3月5日", datetime(2026, 3, 5, 18, 0, tzinfo=TZ)).value == iso(2026, 3, 5)  # today counts
    assert one("3月5号", datetime(2026, 3, 6, 9, 0, tzinfo=TZ)).value == iso(2027, 3, 5)
    assert one("12月1号").value == iso(2026, 12, 1)


@pytest.mark.parametrize(
    "text", ["2026年12月1日", "2026-12-01", "2026/12/1", "二〇二六年十二月一日", "12.1号"]
)
def test_absolute_dates(text: str) -> None:
    e = one(f"截止到{text}前")
    assert e.text == text and e.value == iso(2026, 12, 1)


@pytest.mark.parametrize("text", ["12.1", "价格12.1元", "版本2.1.3"])
def test_decimal_is_not_a_date(text: str) -> None:
    assert times(text) == []


def test_end_of_february_in_a_leap_year() -> None:
    assert one("月底", datetime(2028, 2, 10, 9, 0, tzinfo=TZ)).value == iso(2028, 2, 29)
    assert one("月底", datetime(2027, 2, 10, 9, 0, tzinfo=TZ)).value == iso(2027, 2, 28)
    assert one("月底").value == iso(2026, 11, 30)


def test_start_of_next_month_and_mid_month() -> None:
    e = one("下个月初")
    assert e.value == iso(2026, 12, 1)
    assert e.additional_info == {"grain": "day", "from": iso(2026, 12, 1), "to": iso(2026, 12, 11)}
    assert one("月中", datetime(2026, 11, 3, 9, 0, tzinfo=TZ)).value == iso(2026, 11, 15)
    assert one("月中").value == iso(2026, 12, 15)  # this month's is over on the 27th
    assert one("下个月5号").value == iso(2026, 12, 5)


@pytest.mark.parametrize(
    ("text", "expected", "grain"),
    [
        ("晚上8点", (2026, 11, 27, 20), "hour"),
        ("中午12点", (2026, 11, 28, 12), "hour"),  # today's noon is over: tomorrow
        ("早上九点", (2026, 11, 28, 9), "hour"),
        ("上午十点一刻", (2026, 11, 28, 10, 15), "minute"),
        ("下午五点三刻", (2026, 11, 27, 17, 45), "minute"),
        ("今晚8点", (2026, 11, 27, 20), "hour"),
        ("明早8点半", (2026, 11, 28, 8, 30), "minute"),
        ("晚上12点", (2026, 11, 28, 0), "hour"),
        ("17:45", (2026, 11, 27, 17, 45), "minute"),
        ("下午3点15分", (2026, 11, 28, 15, 15), "minute"),
        ("三点钟", (2026, 11, 28, 15), "hour"),
    ],
)
def test_clock_times(text: str, expected: tuple[int, ...], grain: str) -> None:
    e = one(text)
    assert e.text == text
    assert e.value == iso(*expected) and e.additional_info == {"grain": grain}


def test_bare_small_hour_means_afternoon() -> None:
    morning = datetime(2026, 11, 27, 9, 0, tzinfo=TZ)
    assert one("两点", morning).value == iso(2026, 11, 27, 14)
    assert one("9点", morning).value == iso(2026, 11, 28, 9)


def test_part_of_day_alone() -> None:
    e = one("上午")
    assert e.additional_info == {"grain": "hour", "from": iso(2026, 11, 28, 9), "to": iso(2026, 11, 28, 12)}
    assert one("下午的会").text == "下午"


def test_week_and_month_grains() -> None:
    week = one("下周")
    assert week.additional_info == {"grain": "week", "from": iso(2026, 11, 30), "to": iso(2026, 12, 7)}
    month = one("下个月")
    assert month.additional_info == {"grain": "month", "from": iso(2026, 12, 1), "to": iso(2027, 1, 1)}


def test_impossible_date_is_reported_invalid() -> None:
    e = one("2月30日")
    assert not e.valid and e.value is None
    assert e.error == "日期不存在，请检查年月日 / No such date; please check the year, month and day"


def test_traditional_characters() -> None:
    e = one("下週三上午有空嗎")
    assert e.text == "下週三上午" and e.value == iso(2026, 12, 2, 9)


def test_full_width_offsets_map_to_original() -> None:
    text = "我想在２０２６年１２月１日上午去"
    e = one(text)
    assert e.text == "２０２６年１２月１日上午" and text[e.start : e.end] == e.text
    assert e.value == iso(2026, 12, 1, 9)


def test_mixed_english() -> None:
    e = one("can I come 明天 下午3点 please")
    assert e.text == "明天 下午3点" and e.value == iso(2026, 11, 28, 15)


@pytest.mark.parametrize(
    "text",
    ["快一点", "早一点办", "一周三次", "3点5万", "电话13912345678", "身份证110101199003071233", "5号窗口"],
)
def test_not_times(text: str) -> None:
    assert times(text) == []


@pytest.mark.parametrize(
    "text", ["早上好", "上午好！", "下午好啊，我想办社保卡", "晚上好 请问", "中午好", "早上好我想换身份证", "晚上好請問"]
)
def test_part_of_day_greetings_are_not_times(text: str) -> None:
    assert times(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("早上好，我想预约下周三上午", "下周三上午"),  # the greeting goes, the appointment stays
        ("下周三上午好", "下周三上午"),  # "next Wednesday morning suits me"
        ("上午好吗", "上午"),  # asks whether the morning suits
        ("上午好不好", "上午"),
        ("今天早上好冷", "今天早上"),
        ("早上8点好", "早上8点"),
    ],
)
def test_part_of_day_with_more_than_a_greeting_stays_a_time(text: str, expected: str) -> None:
    assert one(text).text == expected


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("下午1点到5点", (2026, 11, 28, 13), (2026, 11, 28, 17)),  # 13:00 is over today: tomorrow's
        ("明天上午10:30到12点之间", (2026, 11, 28, 10, 30), (2026, 11, 28, 12)),
        ("明天上午10点到下午3点", (2026, 11, 28, 10), (2026, 11, 28, 15)),
        ("周一9点至11点半", (2026, 11, 30, 9), (2026, 11, 30, 11, 30)),
        ("15:00-17:00", (2026, 11, 28, 15), (2026, 11, 28, 17)),
    ],
)
def test_clock_ranges_are_one_interval(text: str, start: tuple[int, ...], end: tuple[int, ...]) -> None:
    e = one(text)
    assert text.startswith(e.text) and e.value == iso(*start)
    assert e.additional_info is not None
    assert (e.additional_info["from"], e.additional_info["to"]) == (iso(*start), iso(*end))


def test_backwards_range_is_two_times() -> None:
    assert [e.text for e in times("明天下午3点到2点")] == ["明天下午3点", "2点"]


def test_two_expressions() -> None:
    found = times("明天上午或者下周一下午")
    assert [e.text for e in found] == ["明天上午", "下周一下午"]


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        ChineseTimeExtractor().extract(normalize("明天"), datetime(2026, 11, 27))


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ValueError, match="grain"):
        ChineseTimeExtractor(grain="day")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("上个月月底丢的", "2026-10-31"), ("下个月的15号", "2026-12-15"), ("上个月的月初", "2026-10-01")],
)
def test_month_word_repeated_or_joined_with_de(text: str, expected: str) -> None:
    from nlu.extractors import find_times

    found = find_times(text, datetime(2026, 11, 27, 10, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert len(found) == 1
    assert found[0].resolved.start.date().isoformat() == expected
