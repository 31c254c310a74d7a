"""Field validators: a candidate value in, a normalised value or a reason the citizen can act on out.

ID numbers and phones are checked by the NLU package's validators (one implementation of GB 11643 and of phone
rules); dates against the holiday calendar; lookups and choices against the form's values and synonyms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from assistant.calendar import HolidayCalendar
from assistant.forms.spec import FieldSpec
from assistant.forms.text import clean, fold
from nlu.extractors.idcard import validate_id_number
from nlu.extractors.phone import validate_phone

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS_ZH = "一二三四五六日"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    value: Any = None
    error_zh: str | None = None
    error_en: str | None = None
    # values the citizen may pick instead (e.g. the next working day), shown as buttons
    suggestions: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return f"{self.error_zh} / {self.error_en}" if self.error_zh else ""


def _reject(zh: str, en: str, suggestions: tuple[str, ...] = ()) -> Verdict:
    return Verdict(False, None, zh, en, suggestions)


def format_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日（周{WEEKDAYS_ZH[day.weekday()]}）"


def _id_number(raw: Any, today: date) -> Verdict:
    check = validate_id_number(str(raw), today=today)
    if not check.valid:
        return _reject(
            f"{check.error_zh}，请核对后重新输入", f"{check.error_en}; please check and enter it again"
        )
    # appointments and back offices use the 18-digit number; a valid old 15-digit one is upgraded
    return Verdict(True, check.upgraded_18 or check.normalized)


def _phone(raw: Any) -> Verdict:
    check = validate_phone(str(raw))
    if not check.valid:
        return _reject(f"{check.error_zh}，请重新输入", f"{check.error_en}; please enter it again")
    if check.kind == "hotline":
        return _reject(
            "请留下您本人的手机或固定电话，而不是服务热线", "please give your own phone, not a hotline"
        )
    return Verdict(True, check.normalized)


def parse_day(raw: Any) -> date | None:
    """A date from a time entity's value (ISO datetime, Asia/Shanghai), a button payload (ISO date) or a stored
    appointment ("2026-12-02 09:00")."""
    if isinstance(raw, datetime):
        return raw.astimezone(SHANGHAI).date() if raw.tzinfo else raw.date()
    if isinstance(raw, date):
        return raw
    text = str(raw or "").strip()
    if "T" in text:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return moment.astimezone(SHANGHAI).date() if moment.tzinfo else moment.date()
    m = re.match(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?", text)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def time_of_day(raw: Any, info: Mapping[str, Any] | None) -> str | None:
    """ "09:00" or "09:00-12:00" (上午) when the citizen named a time, not just a day."""
    if (info or {}).get("grain") not in ("hour", "minute", "second"):
        return None
    try:
        start = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    end = (info or {}).get("to")
    if end:
        try:
            return f"{start:%H:%M}-{datetime.fromisoformat(str(end)):%H:%M}"
        except ValueError:
            pass
    return f"{start:%H:%M}"


def _working_day(
    field: FieldSpec, raw: Any, today: date, calendar: HolidayCalendar, info: Mapping[str, Any] | None
) -> Verdict:
    day = parse_day(raw)
    if day is None:
        return _reject(
            "没有听懂这个日期，请说具体哪一天，例如“12月3日”或“下周二”", "please give a specific day"
        )
    earliest = calendar.next_working_day(today, inclusive=False)
    latest = today + timedelta(days=field.max_days_ahead)
    grain = (info or {}).get("grain", "day")
    if grain in ("week", "month", "year"):
        # "下周" / "下个月": a span, not a day; offer its first working day that can be booked
        start = max(day, earliest)
        if start > latest or not calendar.covers(start):
            return _reject("请说具体哪一天", "please give a specific day")
        first = calendar.next_working_day(start)
        return _reject(
            f"请选择具体哪一天。最近可预约的是{format_date(first)}",
            f"please pick a specific day; the first one available is {first.isoformat()}",
            (first.isoformat(),),
        )
    if day <= today:
        what = "今天" if day == today else "过去的日期"
        return _reject(
            f"{format_date(day)}是{what}，只能预约明天及以后的工作日。最近可预约的是{format_date(earliest)}",
            f"{day.isoformat()} is not in the future; the first day available is {earliest.isoformat()}",
            (earliest.isoformat(),),
        )
    if day > latest:
        return _reject(
            f"只能预约{field.max_days_ahead}天以内的日期（{format_date(latest)}之前）",
            f"appointments can be made at most {field.max_days_ahead} days ahead",
        )
    if not calendar.covers(day):
        return _reject(
            "这个日期的节假日安排尚未公布，请选择更近的日期", "holidays for that year are not published yet"
        )
    status = calendar.status(day)
    if not status.working:
        nxt = calendar.next_working_day(day)
        return _reject(
            f"{format_date(day)}是{status.reason_zh}，不办理业务。最近的工作日是{format_date(nxt)}，可以吗？",
            f"{day.isoformat()} is {status.reason_en}; the next working day is {nxt.isoformat()}",
            (nxt.isoformat(),),
        )
    clock = time_of_day(raw, info)
    return Verdict(True, f"{day.isoformat()} {clock}" if clock else day.isoformat())


def match_value(field: FieldSpec, raw: Any) -> str | None:
    """The canonical value a typed answer, a button payload or a synonym stands for."""
    text = str(raw or "")
    payload = re.fullmatch(r'/\w+\{"?(\w+)"?\s*:\s*"([^"]*)"\}', text.strip())
    if payload:  # a Rasa button payload: /inform{"district":"云湖区"}
        text = payload[2]
    key = fold(text)
    if not key:
        return None
    if key in field.synonyms:
        return field.synonyms[key]
    if field.kind == "lookup":
        # "云湖" for 云湖区: a district's name without its suffix
        stems = {fold(re.sub(r"(区|县|市|镇|街道)$", "", v)): v for v in field.values}
        if key in stems:
            return stems[key]
    # the answer inside a sentence: "就选云湖区吧", "我要办换领的"; the longest mention wins
    found = [(len(k), v) for k, v in field.synonyms.items() if len(k) >= 2 and k in key]
    if found:
        return max(found)[1]
    return None


def _choice(field: FieldSpec, raw: Any) -> Verdict:
    value = match_value(field, raw)
    if value is None:
        options = "、".join(field.values)
        return _reject(
            f"“{clean(str(raw))[:20]}”不在可选范围内，请从以下选项中选择：{options}",
            f"not one of the options: {', '.join(field.values)}",
            field.values,
        )
    return Verdict(True, value)


_NAME = re.compile(r"[\u4e00-\u9fa5·•]{2,15}|[A-Za-z][A-Za-z .'-]{1,39}")


# answers to "what is the applicant's name?" that fit the pattern but name a place, a service or a question:
# a citizen who answers the question before (朝阳区) or asks one back (身份证怎么办) must be asked again, not booked
# under that "name"
_PLACE_SUFFIX = re.compile(r".{2,}(区|县|市|省|州|镇|乡|村|街道|社区|中心|大厅|窗口|派出所)$")
_NOT_NAME_WORDS = (
    "身份证", "社保", "医保", "公积金", "户口", "户籍", "居住证", "预约", "办理", "挂失", "补办", "换证", "过期",
    "怎么", "什么", "为什么", "哪里", "多少", "不知道", "不用", "取消", "人工", "客服", "谢谢", "你好", "您好",
    "上午", "下午", "晚上", "星期", "礼拜", "今天", "明天", "后天", "下周", "本周", "这周",
)


def _name(raw: Any) -> Verdict:
    text = clean(str(raw)).replace("•", "·")
    text = re.sub(r"^(我叫|我是|姓名是?|名字是?|叫)", "", text).strip()
    if not _NAME.fullmatch(text):
        return _reject("请输入申请人的真实姓名（2-15个汉字）", "please give the applicant's full name")
    if "·" not in text and (_PLACE_SUFFIX.fullmatch(text) or any(w in text for w in _NOT_NAME_WORDS)):
        return _reject(
            f"“{text[:15]}”看起来不是人名，请输入申请人的真实姓名（与身份证一致）",
            "that does not look like a person's name; please give the applicant's name as on the ID card",
        )
    return Verdict(True, text)


def _text(field: FieldSpec, raw: Any) -> Verdict:
    text = clean(str(raw))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00([+-]\d{2}:\d{2})?", text):
        # a time entity mapped to a free-text field ("起始居住时间"): the day is what was meant
        text = text[:10]
    if not text:
        return _reject(f"请提供{field.label}", f"please give the {field.label_en}")
    if len(text) > field.max_length:
        return _reject(f"{field.label}最多{field.max_length}个字", f"at most {field.max_length} characters")
    return Verdict(True, text)


def _number(field: FieldSpec, raw: Any) -> Verdict:
    try:
        return Verdict(True, float(str(raw).replace(",", "")))
    except ValueError:
        return _reject(f"{field.label}应为数字", f"the {field.label_en} must be a number")


def validate(
    field: FieldSpec,
    raw: Any,
    *,
    today: date,
    calendar: HolidayCalendar,
    info: Mapping[str, Any] | None = None,
) -> Verdict:
    """Check one candidate value for ``field``. ``info`` is the entity's ``additional_info`` (a time's grain)."""
    if field.kind == "id_number":
        return _id_number(raw, today)
    if field.kind == "phone":
        return _phone(raw)
    if field.kind == "working_day":
        return _working_day(field, raw, today, calendar, info)
    if field.kind in ("lookup", "choice"):
        return _choice(field, raw)
    if field.kind == "name":
        return _name(raw)
    if field.kind == "number":
        return _number(field, raw)
    return _text(field, raw)
