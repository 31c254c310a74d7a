from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import ChineseNumberExtractor
from nlu.normalize import normalize

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def found(text: str, **settings: object) -> list[tuple[str, str, object]]:
    return [
        (e.entity, e.text, e.value) for e in ChineseNumberExtractor(**settings).extract(normalize(text), NOW)
    ]


@pytest.mark.parametrize(
    ("text", "surface", "value"),
    [
        ("三千五", "三千五", 3500),
        ("两万", "两万", 20000),
        ("1.5万", "1.5万", 15000),
        ("3.5", "3.5", 3.5),
        ("一千零五", "一千零五", 1005),
        ("三十五岁", "三十五", 35),
        ("一个人", "一", 1),
        ("共12,000份", "12,000", 12000),
    ],
)
def test_numbers(text: str, surface: str, value: object) -> None:
    assert found(text) == [("number", surface, value)]


def test_percentages() -> None:
    [(entity, surface, value)] = found("报销百分之五")
    assert (entity, surface, value) == ("number", "百分之五", 0.05)
    e = ChineseNumberExtractor().extract(normalize("上浮5%"), NOW)[0]
    assert e.value == 0.05 and e.additional_info == {"unit": "%", "percent": 5}


@pytest.mark.parametrize(
    ("text", "surface", "value"),
    [
        ("3千块", "3千块", 3000),
        ("5000元", "5000元", 5000),
        ("两万块钱", "两万块钱", 20000),
        ("补贴1.5万元", "1.5万元", 15000),
        ("¥300", "¥300", 300),
        ("￥３００", "￥３００", 300),
        ("5 元", "5 元", 5),
    ],
)
def test_amounts_in_yuan(text: str, surface: str, value: object) -> None:
    assert found(text) == [("amount", surface, value)]


def test_integer_percent_and_exact_large_amounts() -> None:
    assert found("上浮12%") == [("number", "12%", 0.12)]
    assert found("1,234,567,891元") == [("amount", "1,234,567,891元", 1234567891)]


def test_long_digit_runs_are_identifiers_not_numbers() -> None:
    assert found("订单2026112700012") == []
    assert found("身份证11010119900307123少一位") == [("number", "一", 1)]


def test_amounts_can_be_switched_off() -> None:
    assert found("5000元", amounts=False) == [("number", "5000", 5000)]


@pytest.mark.parametrize("text", ["我想问一下", "千万别忘了", "十分感谢", "统一办理", "万一不行呢", "一样的"])
def test_numeral_characters_in_words_are_not_numbers(text: str) -> None:
    assert found(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "电话13912345678",
        "身份证110101199003071233",
        "身份证 110101 19900307 1233",
        "明天下午3点",
        "2026年12月1日",
        "3月5号",
        "打12345",
        "座机010-12345678",
    ],
)
def test_digits_of_ids_phones_and_times_are_not_numbers(text: str) -> None:
    assert found(text) == []


def test_number_next_to_a_time() -> None:
    assert found("明天下午3点带2份材料") == [("number", "2", 2)]


def test_full_width_offsets() -> None:
    text = "补贴３０００元整"
    [e] = ChineseNumberExtractor().extract(normalize(text), NOW)
    assert e.value == 3000 and text[e.start : e.end] == "３０００元"


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ValueError, match="amount"):
        ChineseNumberExtractor(amount=True)


def test_absurd_numeral_runs_do_not_crash() -> None:
    assert found("三" * 3000) == []
    assert len(found("1 " * 200)) == 200
