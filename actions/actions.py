"""Demo custom actions: one plain ``Action`` and one ``FormValidationAction``."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

CITY = "云州市"
# used when the domain does not list the districts as a categorical `district` slot
DEFAULT_DISTRICTS = ("云湖区", "青川区", "临江区", "高新区")

SERVICE_HALLS = {
    "云湖区": "云湖区政务服务中心（云湖大道88号，一楼综合窗口）",
    "青川区": "青川区政务服务中心（青川路12号）",
    "临江区": "临江区政务服务中心（滨江东路3号）",
    "高新区": "高新区政务服务中心（科创大道1号，二楼东区）",
}
CITY_HALL = "云州市政务服务中心（市民广场1号）"
OPENING_HOURS = "工作日 9:00-12:00、13:30-17:00（法定节假日休息）"

# another city named in the address: "北京市", "杭州市西湖区", "苏州市"
_OTHER_CITY = re.compile(r"([\u4e00-\u9fa5]{2,6}?)[市州]")


def districts_from_domain(domain: DomainDict) -> tuple[str, ...]:
    slot = (domain.get("slots") or {}).get("district") or {}
    values = slot.get("values") or ()
    return tuple(str(v) for v in values) or DEFAULT_DISTRICTS


class ActionLookupServiceHall(Action):
    """Tells the citizen where to go in person: their district's service hall, or the city's."""

    def name(self) -> str:
        return "action_lookup_service_hall"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        district = tracker.get_slot("district")
        hall = SERVICE_HALLS.get(str(district), CITY_HALL) if district else CITY_HALL
        dispatcher.utter_message(text=f"您可以前往{hall}办理，办理时间：{OPENING_HOURS}。")
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
            dispatcher.utter_message(text="请提供详细的居住地址，例如“云湖区云湖大道88号3栋201室”。")
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
