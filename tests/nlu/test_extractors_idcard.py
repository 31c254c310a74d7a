from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import IdCardExtractor, mask_id, validate_id_number
from nlu.extractors.idcard import check_digit
from nlu.normalize import normalize

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
TODAY = NOW.date()
VALID = "110101199003071233"  # male, born 1990-03-07
VALID_X = "11010519491231002X"  # the published GB 11643 example: female, born 1949-12-31
LEAP = "310115200002290021"  # born on 29 Feb 2000
WRONG_CHECK = "110101199003071234"
FEB_30 = "110101199002301236"  # check digit right, date impossible
FUTURE = "440304202612010015"  # check digit right, born after TODAY
BEFORE_1900 = "440524188001010014"  # check digit right, born 1880


def ids(text: str) -> list:
    return IdCardExtractor().extract(normalize(text), NOW)


def test_check_digit_of_published_example() -> None:
    assert check_digit("11010519491231002") == "X"


def test_valid_number_with_birth_date_and_gender() -> None:
    check = validate_id_number(VALID, today=TODAY)
    assert check.valid and check.error is None
    assert check.normalized == VALID
    assert check.birth_date == date(1990, 3, 7)
    assert check.gender == "male"
    assert not check.legacy_15


def test_lower_case_x_is_normalised_to_upper() -> None:
    check = validate_id_number(VALID_X.lower(), today=TODAY)
    assert check.valid
    assert check.normalized == VALID_X
    assert check.gender == "female"


def test_full_width_digits_spaces_and_dashes() -> None:
    full_width = "１１０１０５ １９４９１２３１ ００２ｘ"
    assert validate_id_number(full_width, today=TODAY).normalized == VALID_X
    assert validate_id_number("110101-19900307-1233", today=TODAY).valid


def test_wrong_check_digit_is_reported_bilingually() -> None:
    check = validate_id_number(WRONG_CHECK, today=TODAY)
    assert not check.valid
    assert check.error_code == "check_digit"
    assert check.error == "身份证号码校验位不正确 / ID number check digit is wrong"


@pytest.mark.parametrize("number", [FEB_30, FUTURE, BEFORE_1900])
def test_impossible_birth_dates(number: str) -> None:
    check = validate_id_number(number, today=TODAY)
    assert not check.valid and check.error_code == "birth_date"
    assert "出生日期" in (check.error or "") and "birth date" in (check.error or "")


def test_leap_day_birth_is_valid() -> None:
    assert validate_id_number(LEAP, today=TODAY).birth_date == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("", "empty"),
        ("1101011990030712", "length"),
        ("11010119900307123A", "format"),
        ("991010199003071233", "region"),
    ],
)
def test_other_errors(number: str, code: str) -> None:
    assert validate_id_number(number, today=TODAY).error_code == code


def test_legacy_15_digit_number() -> None:
    check = validate_id_number("110101900307123", today=TODAY)
    assert check.valid and check.legacy_15
    assert check.birth_date == date(1990, 3, 7)
    assert check.gender == "male"
    assert check.upgraded_18 == "11010119900307123" + check_digit("11010119900307123")


def test_legacy_15_digit_with_impossible_date() -> None:
    check = validate_id_number("110101900230123", today=TODAY)
    assert not check.valid and check.legacy_15 and check.error_code == "birth_date"


def test_mask_and_repr_never_show_the_number() -> None:
    assert mask_id(VALID) == "1101**********1233"
    assert mask_id("１１０１０５１９４９１２３１００２ｘ") == "1101**********002X"
    check = validate_id_number(VALID, today=TODAY)
    assert VALID not in repr(check)
    assert check.masked == "1101**********1233"


def test_extracts_in_chinese_context_without_boundaries() -> None:
    [e] = ids(f"我的身份证号是{VALID}请帮我查一下")
    assert (e.entity, e.value, e.valid) == ("id_number", VALID, True)
    assert e.additional_info == {"legacy_15": False, "birth_date": "1990-03-07", "gender": "male"}


def test_invalid_candidate_is_still_an_entity() -> None:
    [e] = ids(f"身份证{WRONG_CHECK}")
    assert e.entity == "id_number" and e.value == WRONG_CHECK
    assert not e.valid and e.error == "身份证号码校验位不正确 / ID number check digit is wrong"
    assert e.to_rasa()["valid"] is False


def test_full_width_spaced_number_offsets_map_to_original() -> None:
    original = "身份證：１１０１０５ １９４９１２３１ ００２ｘ。"
    [e] = ids(original)
    assert e.value == VALID_X and e.valid
    assert e.text == "１１０１０５ １９４９１２３１ ００２ｘ"
    assert original[e.start : e.end] == e.text


def test_longer_digit_runs_are_not_ids() -> None:
    assert ids(f"订单号{VALID}99") == []
    assert ids(f"1{VALID}") == []


def test_invalid_15_digit_number_needs_id_context() -> None:
    assert ids("营业执照注册号110101900230123") == []
    [e] = ids("身份证号110101900230123")
    assert not e.valid and e.additional_info and e.additional_info["legacy_15"]


def test_valid_15_digit_number_without_context() -> None:
    [e] = ids("号码110101900307123")
    assert e.valid and e.value == "110101900307123"


def test_wrong_length_is_reported_only_when_called_an_id() -> None:
    [e] = ids(f"我的身份证是{VALID[:-1]}少了一位")
    assert not e.valid and e.additional_info and e.additional_info["error_code"] == "length"
    assert "18" in (e.error or "")
    assert ids(f"订单号{VALID[:-1]}") == []


def test_two_ids_in_one_sentence() -> None:
    found = ids(f"我{VALID}，我爱人{VALID_X.lower()}")
    assert [e.value for e in found] == [VALID, VALID_X]


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ValueError, match="contxt_window"):
        IdCardExtractor(contxt_window=3)
