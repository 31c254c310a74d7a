"""Resident identity card numbers (GB 11643-1999): validation, masking and extraction.

A candidate that looks like an ID number but fails a check is still reported (``valid=False`` with the reason),
so the dialogue can tell the citizen what is wrong instead of silently ignoring what they typed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from nlu.extractors._base import check_settings, make_entity
from nlu.normalize import Normalized
from nlu.types import Entity

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_MAP = "10X98765432"
# first two digits: province-level division codes (GB/T 2260), plus 71/81/82 for Taiwan, Hong Kong, Macao
_PROVINCES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)
_EARLIEST_BIRTH = date(1900, 1, 1)

_ERRORS: dict[str, tuple[str, str]] = {
    "empty": ("请提供身份证号码", "Please provide an ID number"),
    "length": ("身份证号码应为18位（或旧版15位）", "An ID number has 18 digits (or 15 for the old format)"),
    "format": ("身份证号码只能包含数字，最后一位可以是X", "An ID number has only digits; the last may be X"),
    "region": ("身份证号码的地区码不正确", "The ID number's region code is wrong"),
    "birth_date": ("身份证号码中的出生日期不正确", "The ID number's birth date is not a valid date"),
    "check_digit": ("身份证号码校验位不正确", "ID number check digit is wrong"),
}


def id_error_message(code: str) -> str:
    zh, en = _ERRORS[code]
    return f"{zh} / {en}"


@dataclass(frozen=True)
class IdCheck:
    valid: bool
    # repr=False: an IdCheck that ends up in a log line must not carry the full number
    normalized: str = field(repr=False)
    error_code: str | None = None
    error_zh: str | None = None
    error_en: str | None = None
    birth_date: date | None = None
    gender: str | None = None  # "male" | "female"
    legacy_15: bool = False
    # the 18-digit form of a valid 15-digit number (century 19 inserted, check digit computed)
    upgraded_18: str | None = field(default=None, repr=False)

    @property
    def error(self) -> str | None:
        return f"{self.error_zh} / {self.error_en}" if self.error_zh else None

    @property
    def masked(self) -> str:
        return mask_id(self.normalized)


def check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_MAP[total % 11]


def clean_id(s: str) -> str:
    """Full-width to ASCII, separators dropped, ``x`` to ``X``."""
    folded = unicodedata.normalize("NFKC", s)
    return re.sub(r"[\s\-]", "", folded).upper()


def _fail(normalized: str, code: str, *, legacy: bool = False, **kw: Any) -> IdCheck:
    zh, en = _ERRORS[code]
    return IdCheck(False, normalized, code, zh, en, legacy_15=legacy, **kw)


def _birth(year: int, month: int, day: int, today: date) -> date | None:
    try:
        born = date(year, month, day)
    except ValueError:
        return None
    return born if _EARLIEST_BIRTH <= born <= today else None


def validate_id_number(s: str, *, today: date | None = None) -> IdCheck:
    """Check an ID number as a citizen typed it. ``today`` bounds the birth date (defaults to the local date)."""
    today = today or date.today()
    n = clean_id(s)
    if not n:
        return _fail(n, "empty")
    if len(n) not in (15, 18):
        return _fail(n, "length")
    legacy = len(n) == 15
    body = n if legacy else n[:17]
    if not body.isascii() or not body.isdigit() or not (legacy or n[17] in "0123456789X"):
        return _fail(n, "format", legacy=legacy)
    if n[:2] not in _PROVINCES:
        return _fail(n, "region", legacy=legacy)
    if legacy:
        born = _birth(1900 + int(n[6:8]), int(n[8:10]), int(n[10:12]), today)
        gender_digit = int(n[14])
    else:
        born = _birth(int(n[6:10]), int(n[10:12]), int(n[12:14]), today)
        gender_digit = int(n[16])
    if born is None:
        return _fail(n, "birth_date", legacy=legacy)
    gender = "male" if gender_digit % 2 else "female"
    if legacy:
        first17 = n[:6] + "19" + n[6:]
        return IdCheck(
            True,
            n,
            birth_date=born,
            gender=gender,
            legacy_15=True,
            upgraded_18=first17 + check_digit(first17),
        )
    if check_digit(n[:17]) != n[17]:
        return _fail(n, "check_digit", birth_date=born, gender=gender)
    return IdCheck(True, n, birth_date=born, gender=gender)


def mask_id(s: str) -> str:
    """``110101199003071234`` -> ``1101**********1234``: enough to recognise, not enough to misuse."""
    n = clean_id(s)
    if len(n) <= 8:
        return "*" * len(n)
    return n[:4] + "*" * (len(n) - 8) + n[-4:]


# Digits may be separated by single spaces or dashes (``110101 19900307 1234``). Lookarounds on digits instead of
# ``\b``: in Chinese text a number is glued to the characters around it ("身份证号110101...的").
_ID18 = re.compile(r"(?<![0-9x])(?<![0-9][ \-])(?:[0-9][ \-]?){17}[0-9x](?![0-9x])(?![ \-][0-9])")
_ID15 = re.compile(r"(?<![0-9x])(?<![0-9][ \-])(?:[0-9][ \-]?){14}[0-9](?![0-9x])(?![ \-][0-9])")
# a digit or two too many or too few: reported (as a length error) only when the citizen says it is an ID number
_ID_NEAR = re.compile(r"(?<![0-9x])[0-9]{13,19}[0-9x](?![0-9x])")
# other 15-digit numbers (old business registration numbers, order numbers) are common: an invalid one is only
# reported with one of these words before it
_ID_CONTEXT = re.compile(r"身份证|证件号|身份号|公民身份|(?<![a-z])id(?![a-z])|id ?card|id ?number")
# a 15-digit birth date is 19YYMMDD, always in the past: the span finder needs no "today"
_FAR_FUTURE = date(9999, 12, 31)


def find_ids(text: str, today: date, context_window: int = 12) -> list[tuple[int, int, IdCheck]]:
    """ID numbers in normalised ``text`` that are worth reporting, valid or not, with their checks."""
    out: list[tuple[int, int, IdCheck]] = []

    def said_id(start: int) -> bool:
        return bool(_ID_CONTEXT.search(text, max(0, start - context_window), start))

    def free(start: int) -> bool:
        return not any(s <= start < e for s, e, _ in out)

    for m in _ID18.finditer(text):
        out.append((m.start(), m.end(), validate_id_number(m.group(), today=today)))
    for m in _ID15.finditer(text):
        check = validate_id_number(m.group(), today=today)
        if free(m.start()) and (check.valid or said_id(m.start())):
            out.append((m.start(), m.end(), check))
    for m in _ID_NEAR.finditer(text):
        if len(m.group()) not in (15, 18) and free(m.start()) and said_id(m.start()):
            out.append((m.start(), m.end(), validate_id_number(m.group(), today=today)))
    return sorted(out, key=lambda t: t[0])


def find_id_spans(text: str) -> list[tuple[int, int]]:
    """Spans of normalised ``text`` the IdCardExtractor reports (with default settings); others avoid them."""
    return [(s, e) for s, e, _ in find_ids(text, _FAR_FUTURE)]


class IdCardExtractor:
    name = "IdCardExtractor"
    _settings = ("context_window",)

    def __init__(self, *, context_window: int = 12, **settings: Any) -> None:
        check_settings(self.name, settings, self._settings)
        if not isinstance(context_window, int) or context_window < 0:
            raise ValueError(f"{self.name}: context_window must be an integer >= 0")
        # how far before a doubtful number to look for words like 身份证 before reporting it as an invalid ID
        self.context_window = context_window

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        out: list[Entity] = []
        for start, end, check in find_ids(doc.text, now.date(), self.context_window):
            info: dict[str, Any] = {"legacy_15": check.legacy_15}
            if check.valid:
                info["birth_date"] = check.birth_date.isoformat() if check.birth_date else None
                info["gender"] = check.gender
            else:
                info["error_code"] = check.error_code
            out.append(
                make_entity(
                    doc,
                    start,
                    end,
                    entity="id_number",
                    value=check.normalized,
                    extractor=self.name,
                    valid=check.valid,
                    error=check.error,
                    additional_info=info,
                )
            )
        return out
