from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import PhoneExtractor, mask_phone, validate_phone
from nlu.normalize import normalize

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def phones(text: str, **settings: object) -> list:
    return PhoneExtractor(**settings).extract(normalize(text), NOW)


@pytest.mark.parametrize(
    ("typed", "normalized", "kind"),
    [
        ("13912345678", "13912345678", "mobile"),
        ("139-1234-5678", "13912345678", "mobile"),
        ("139 1234 5678", "13912345678", "mobile"),
        ("+86 139 1234 5678", "13912345678", "mobile"),
        ("+8613912345678", "13912345678", "mobile"),
        ("8613912345678", "13912345678", "mobile"),
        ("0086-139-1234-5678", "13912345678", "mobile"),
        ("１３９１２３４５６７８", "13912345678", "mobile"),
        ("010-12345678", "010-12345678", "landline"),
        ("01012345678", "010-12345678", "landline"),
        ("0755 8888 6666", "0755-88886666", "landline"),
        ("(021)12345678", "021-12345678", "landline"),
        ("（０２１）１２３４５６７８", "021-12345678", "landline"),
        ("+86 10 1234 5678", "010-12345678", "landline"),
        ("12345", "12345", "hotline"),
    ],
)
def test_validate_accepts(typed: str, normalized: str, kind: str) -> None:
    check = validate_phone(typed)
    assert check.valid, check.error
    assert (check.normalized, check.kind) == (normalized, kind)


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("", "empty"),
        ("1391234567", "mobile_length"),
        ("139123456789", "mobile_length"),
        ("12912345678", "mobile_length"),
        ("010-1234567", "invalid"),
        ("139abc45678", "format"),
        ("23912345678", "invalid"),
    ],
)
def test_validate_rejects_with_bilingual_error(typed: str, code: str) -> None:
    check = validate_phone(typed)
    assert not check.valid and check.error_code == code
    zh, en = (check.error or "").split(" / ")
    assert zh and en


def test_masking_and_repr() -> None:
    assert mask_phone("13912345678") == "139****5678"
    assert mask_phone("+86 139-1234-5678") == "139****5678"
    assert mask_phone("010-12345678") == "010-****5678"
    check = validate_phone("13912345678")
    assert "13912345678" not in repr(check) and check.masked == "139****5678"


@pytest.mark.parametrize(
    ("text", "value", "surface"),
    [
        ("我的手机是13912345678谢谢", "13912345678", "13912345678"),
        ("电话139-1234-5678", "13912345678", "139-1234-5678"),
        ("电话 139 1234 5678 ok", "13912345678", "139 1234 5678"),
        ("my phone is +86 13912345678.", "13912345678", "+86 13912345678"),
        ("my phone is 13912345678", "13912345678", "13912345678"),
        ("Tel:010-12345678", "010-12345678", "010-12345678"),
        ("打0755 8888 6666找我", "0755-88886666", "0755 8888 6666"),
        ("办公室(021)12345678", "021-12345678", "(021)12345678"),
        ("拨打0086 13912345678", "13912345678", "0086 13912345678"),
        ("座机010-12345678转", "010-12345678", "010-12345678"),
    ],
)
def test_extracts_phones_in_context(text: str, value: str, surface: str) -> None:
    [e] = phones(text)
    assert (e.entity, e.value, e.text, e.valid) == ("phone", value, surface, True)
    assert text[e.start : e.end] == surface


def test_traditional_and_full_width_offsets() -> None:
    text = "電話：１３９－１２３４－５６７８。"
    [e] = phones(text)
    assert e.value == "13912345678"
    assert e.text == "１３９－１２３４－５６７８" and text[e.start : e.end] == e.text


def test_not_inside_an_id_number() -> None:
    assert phones("身份证110101199003071233") == []
    # 19900307123 looks like a mobile; the spaced ID around it wins
    assert phones("身份证 110101 19900307123 3") == []


def test_not_inside_longer_digit_runs() -> None:
    assert phones("订单号2139123456789") == []


def test_hotline_entity_and_switch() -> None:
    [e] = phones("打12345热线问问")
    assert (e.entity, e.value, e.additional_info) == ("hotline", "12345", {"kind": "hotline"})
    assert phones("打12345热线问问", hotlines=False) == []


def test_invalid_number_reported_only_with_phone_context() -> None:
    [e] = phones("手机号1391234567")
    assert not e.valid and e.entity == "phone"
    assert e.error == "手机号码应为11位 / A mobile number has 11 digits"
    assert phones("编号1391234567") == []
    assert phones("手机号1391234567", report_invalid=False) == []


def test_two_phones() -> None:
    found = phones("手机13912345678，座机010-12345678")
    assert [e.value for e in found] == ["13912345678", "010-12345678"]


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ValueError, match="hotline"):
        PhoneExtractor(hotline=True)
