"""Demo custom actions: a plain ``Action`` and one ``FormValidationAction`` per service form.

Addresses and hours follow the demo knowledge base (knowledge_base/docs/district-halls.md).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

CITY = "云州市"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# used when the domain does not list the districts as a categorical `district` slot (the demo domain's ten)
DEFAULT_DISTRICTS = ("云湖区", "青川区", "临江区", "东岭区", "西山区", "北塘区", "高新区", "经开区", "南屏县", "白石县")

SERVICE_HALLS = {
    "云湖区": "云湖区政务服务中心（云湖区文昌路66号）",
    "青川区": "青川区政务服务中心（青川区锦绣大道210号）",
    "临江区": "临江区政务服务中心（临江区滨江路45号）",
    "东岭区": "东岭区政务服务中心（东岭区东岭大街301号）",
    "高新区": "高新区政务服务中心（高新区创新路18号科创大厦1—3层）",
    "南屏县": "南屏县政务服务中心（南屏县城关镇人民路120号）",
}
# 西山区, 北塘区, 经开区 and 白石县 have no hall in district-halls.md: high-frequency services are handled city-wide
# (全市通办), so those citizens are sent to the citizen centre or the nearest district hall rather than an invented one
CITY_HALL = "云州市市民中心，或就近的区（县）政务服务中心（高频事项全市通办）"
OPENING_HOURS = "周一至周五 9:00—12:00、13:30—17:30，法定节假日休息"

# another city named in the address: "北京市", "杭州市西湖区", "苏州市"
_OTHER_CITY = re.compile(r"([\u4e00-\u9fa5]{2,6}?)[市州]")
# housing-fund withdrawals above this need an appointment at the counter rather than this channel (demo rule)
MAX_WITHDRAWAL_YUAN = 1_000_000


def districts_from_domain(domain: DomainDict) -> tuple[str, ...]:
    slot = (domain.get("slots") or {}).get("district") or {}
    values = slot.get("values") or ()
    return tuple(str(v) for v in values) or DEFAULT_DISTRICTS


def _today() -> date:
    return datetime.now(SHANGHAI).date()


class ActionLookupServiceHall(Action):
    """Tells the citizen where to go in person: their district's service hall, or the city's."""

    def name(self) -> str:
        return "action_lookup_service_hall"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        district = tracker.get_slot("district")
        hall = SERVICE_HALLS.get(str(district), CITY_HALL) if district else CITY_HALL
        dispatcher.utter_message(text=f"您可以前往{hall}办理，开放时间：{OPENING_HOURS}。")
        return [SlotSet("service_hall", hall)]


class ValidateResidencePermitApplication(FormValidationAction):
    """A residence permit is issued where one lives, so the address must be in 云州市.

    rasa-sdk derives the form from the action name (``validate_<form>``): this validates the form
    ``residence_permit_application``.
    """

    def name(self) -> str:
        return "validate_residence_permit_application"

    def validate_residence_address(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        address = re.sub(r"\s+", "", str(slot_value or ""))
        if len(address) < 4:
            dispatcher.utter_message(text="请提供详细的居住地址，例如“云湖区文昌路66号3栋201室”。")
            return {"residence_address": None}
        districts = districts_from_domain(domain)
        if address.startswith(CITY):
            return {"residence_address": address}
        short = CITY.removesuffix("市")  # citizens often write "云州云湖区…"
        if address.startswith(short):
            return {"residence_address": CITY + address.removeprefix(short)}
        if address.startswith(districts):
            return {"residence_address": CITY + address}
        other = _OTHER_CITY.match(address)
        where = f"（您填写的是{other.group(0)}）" if other else ""
        dispatcher.utter_message(
            text=f"居住证需在居住地办理，本平台只受理{CITY}范围内的地址{where}。"
            f"请填写您在{CITY}的居住地址，例如“{districts[0]}……”。"
        )
        return {"residence_address": None}


class ValidateIdCardAppointment(FormValidationAction):
    """A lost card is replaced only in person with a new photo: say so as soon as the reason is known."""

    def name(self) -> str:
        return "validate_id_card_appointment"

    def validate_reason(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if slot_value == "丢失补领":
            dispatcher.utter_message(
                text="提示：丢失补领须本人到场，现场核验身份并采集照片和指纹，不可代办。"
            )
        return {"reason": slot_value}


class ValidateSocialSecurityCardLossReport(FormValidationAction):
    """A card cannot be lost in the future: a loss date after today is a misheard date."""

    def name(self) -> str:
        return "validate_social_security_card_loss_report"

    def validate_loss_time(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            day = datetime.fromisoformat(str(slot_value)).date()
        except ValueError:
            return {"loss_time": slot_value}  # free text such as "上个月月底" is kept as said
        if day > _today():
            dispatcher.utter_message(
                text=f"丢失时间不能晚于今天（您说的是{day.month}月{day.day}日），请再说一下大概什么时候丢的。"
            )
            return {"loss_time": None}
        return {"loss_time": day.isoformat()}


class ValidateHousingFundWithdrawalAppointment(FormValidationAction):
    """The amount must be positive, in yuan and fen, and within what this channel accepts."""

    def name(self) -> str:
        return "validate_housing_fund_withdrawal_appointment"

    def validate_amount(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        try:
            amount = round(float(slot_value), 2)
        except (TypeError, ValueError):
            dispatcher.utter_message(text="提取金额请填写数字，例如“20000”或“两万元”。")
            return {"amount": None}
        if amount <= 0:
            dispatcher.utter_message(text="提取金额需大于0元。")
            return {"amount": None}
        if amount > MAX_WITHDRAWAL_YUAN:
            dispatcher.utter_message(
                text=f"单次线上预约提取金额不超过{MAX_WITHDRAWAL_YUAN // 10000}万元，更大金额请到公积金中心窗口办理。"
            )
            return {"amount": None}
        return {"amount": amount}
