"""Mainland phone numbers: mobiles by rule, landlines checked with ``phonenumbers``, 123xx government hotlines."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers

from nlu.extractors._base import Covered, check_settings, make_entity
from nlu.extractors.idcard import find_id_spans
from nlu.normalize import Normalized
from nlu.types import Entity

_ERRORS: dict[str, tuple[str, str]] = {
    "empty": ("请提供电话号码", "Please provide a phone number"),
    "format": (
        "电话号码只能包含数字、空格、短横线和括号",
        "A phone number has only digits, spaces, dashes and brackets",
    ),
    "mobile_length": ("手机号码应为11位", "A mobile number has 11 digits"),
    "invalid": ("电话号码无效，请检查区号和号码", "Not a valid phone number; check the area code and number"),
}

_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# 12345 (citizen hotline), 12333 (social security), 12315 (consumer), 12366 (tax), ...: all 123xx are public
_HOTLINE = re.compile(r"123[0-9]{2}")


@dataclass(frozen=True)
class PhoneCheck:
    valid: bool
    normalized: str = field(repr=False)  # national form: 13912345678, 010-12345678, 12345
    kind: str | None = None  # "mobile" | "landline" | "hotline"
    error_code: str | None = None
    error_zh: str | None = None
    error_en: str | None = None

    @property
    def error(self) -> str | None:
        return f"{self.error_zh} / {self.error_en}" if self.error_zh else None

    @property
    def masked(self) -> str:
        return mask_phone(self.normalized)


def phone_error_message(code: str) -> str:
    zh, en = _ERRORS[code]
    return f"{zh} / {en}"


def _fail(normalized: str, code: str, kind: str | None = None) -> PhoneCheck:
    zh, en = _ERRORS[code]
    return PhoneCheck(False, normalized, kind, code, zh, en)


def _digits(s: str) -> tuple[str, bool]:
    """Digits of a typed number with the country prefix dropped; False when it has characters a phone cannot."""
    folded = unicodedata.normalize("NFKC", s).strip()
    if not re.fullmatch(r"\+?\(?[0-9][0-9 \-()]*", folded):
        return re.sub(r"[^0-9]", "", folded), False
    digits = re.sub(r"[^0-9]", "", folded)
    for prefix in ("0086", "86"):
        rest = digits[len(prefix) :]
        # only a prefix when what follows is a whole number: 86 then a mobile, or 86 then an area code without 0
        if digits.startswith(prefix) and (
            folded.startswith("+") or prefix == "0086" or _MOBILE.fullmatch(rest)
        ):
            return rest if _MOBILE.fullmatch(rest) else "0" + rest, True
    if folded.startswith("+"):
        return digits, False
    return digits, True


def validate_phone(s: str) -> PhoneCheck:
    digits, ok = _digits(s)
    if not digits:
        return _fail(digits, "empty")
    if not ok:
        return _fail(digits, "format")
    if digits.startswith("1"):
        if _MOBILE.fullmatch(digits):
            return PhoneCheck(True, digits, "mobile")
        if _HOTLINE.fullmatch(digits):
            return PhoneCheck(True, digits, "hotline")
        return _fail(digits, "mobile_length", "mobile")
    if not digits.startswith("0"):
        return _fail(digits, "invalid")
    try:
        parsed = phonenumbers.parse(digits, "CN")
    except phonenumbers.NumberParseException:
        return _fail(digits, "invalid", "landline")
    kind = phonenumbers.number_type(parsed)
    fixed = (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if not phonenumbers.is_valid_number(parsed) or kind not in fixed:
        return _fail(digits, "invalid", "landline")
    nsn = str(parsed.national_number)
    area = phonenumbers.length_of_geographical_area_code(parsed)
    return PhoneCheck(True, f"0{nsn[:area]}-{nsn[area:]}", "landline")


def mask_phone(s: str) -> str:
    """``13912345678`` -> ``139****5678``; ``010-12345678`` -> ``010-****5678``."""
    check = validate_phone(s)
    n = check.normalized if check.valid else re.sub(r"[^0-9]", "", unicodedata.normalize("NFKC", s))
    if check.kind == "hotline":
        return n
    prefix, sep, local = n.rpartition("-")
    if sep:
        return f"{prefix}-{'*' * max(len(local) - 4, 0)}{local[-4:]}"
    if len(n) <= 7:
        return "*" * len(n)
    return n[:3] + "*" * (len(n) - 7) + n[-4:]


# Lookarounds on digits, not \b: Chinese text glues numbers to words ("电话13912345678谢谢").
_NOT_BEFORE = r"(?<![0-9+])(?<![0-9][ \-])"
_NOT_AFTER = r"(?![0-9])(?![ \-][0-9])"
_MOBILE_TEXT = re.compile(_NOT_BEFORE + r"(?:(?:\+|00)?86[ \-]?)?1[3-9][0-9](?:[ \-]?[0-9]){8}" + _NOT_AFTER)
_LANDLINE_TEXT = re.compile(
    r"(?<![0-9+])(?:\(0[0-9]{2,3}\)|0[0-9]{2,3}(?:[ \-]|(?=[0-9])))[ ]?[0-9]{3,4}[ \-]?[0-9]{4}" + _NOT_AFTER
)
_HOTLINE_TEXT = re.compile(r"(?<![0-9])123[0-9]{2}(?![0-9])")
# with one of these just before it, a number that fails the checks is reported as an invalid phone
_PHONE_CONTEXT = re.compile(r"(电话|手机|号码|联系方式|tel|phone|mobile)[^0-9]{0,4}$")
_PHONE_LIKE = re.compile(_NOT_BEFORE + r"(?:\+?86[ \-]?)?[01][0-9](?:[ \-]?[0-9]){4,11}" + _NOT_AFTER)


def find_phone_spans(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` (normalised) shaped like a phone or hotline number, unvalidated; for other extractors."""
    return sorted(m.span() for p in (_MOBILE_TEXT, _LANDLINE_TEXT, _HOTLINE_TEXT) for m in p.finditer(text))


class PhoneExtractor:
    name = "PhoneExtractor"
    _settings = ("hotlines", "report_invalid")

    def __init__(self, *, hotlines: bool = True, report_invalid: bool = True, **settings: Any) -> None:
        check_settings(self.name, settings, self._settings)
        self.hotlines = bool(hotlines)
        self.report_invalid = bool(report_invalid)

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        text = doc.text
        # a phone-shaped run inside an ID number ("110101[19900307123]4") is not a phone
        taken = Covered(len(text), find_id_spans(text))
        out: list[Entity] = []
        patterns = [_MOBILE_TEXT, _LANDLINE_TEXT] + ([_HOTLINE_TEXT] if self.hotlines else [])
        for pattern in patterns:
            for m in pattern.finditer(text):
                if taken.hits(m.span()):
                    continue
                check = validate_phone(m.group())
                if not check.valid:
                    continue
                out.append(self._entity(doc, m.span(), check))
                taken.add(*m.span())
        if self.report_invalid:
            for m in _PHONE_LIKE.finditer(text):
                if taken.hits(m.span()) or not _PHONE_CONTEXT.search(
                    text[max(0, m.start() - 12) : m.start()]
                ):
                    continue
                check = validate_phone(m.group())
                if not check.valid:
                    out.append(self._entity(doc, m.span(), check))
        return sorted(out, key=lambda e: e.start)

    def _entity(self, doc: Normalized, span: tuple[int, int], check: PhoneCheck) -> Entity:
        return make_entity(
            doc,
            *span,
            entity="hotline" if check.kind == "hotline" else "phone",
            value=check.normalized,
            extractor=self.name,
            valid=check.valid,
            error=check.error,
            additional_info={"kind": check.kind} if check.kind else None,
        )
