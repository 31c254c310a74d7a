"""Rasa's default actions, plus the two steps of the fallback ladder.

Each uses a domain response when the project defines one (``utter_default``, ``utter_restart``, …) and a
bilingual built-in text otherwise, so a minimal project still answers sensibly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.actions import Action, ActionContext
from assistant.domain import Button
from assistant.events import (
    ActiveLoop,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
)
from assistant.tracker import ACTION_LISTEN, REQUESTED_SLOT

DEFAULT_TEXTS = {
    "utter_default": "抱歉，我没能理解您的意思，请换个说法再试一次。(Sorry, I did not understand. Could you rephrase?)",
    "utter_ask_rephrase": "抱歉，我不太确定您的意思。您是想办理下面哪一项？(Which of these did you mean?)",
    "utter_offer_human": "抱歉，我暂时没能帮到您。需要为您转接人工客服吗？(Shall I connect you with a staff member?)",
    "utter_back": "好的，我们回到上一步。(OK, going back one step.)",
}
HUMAN_BUTTONS = (Button("转人工客服", "/request_human"), Button("不用了，换个问题", "/deny"))


def utter(
    ctx: ActionContext,
    name: str,
    buttons: Sequence[Button] = (),
    /,
    **values: Any,
) -> BotUttered | None:
    """The domain response ``name`` (buttons added after its own), else the built-in text, else None."""
    message = ctx.nlg.generate(name, ctx.tracker.slots, ctx.tracker.state.latest_input_channel, **values)
    if message is None:
        text = DEFAULT_TEXTS.get(name)
        if text is None:
            return None
        data: dict[str, Any] = {}
    else:
        text = message.text
        data = message.event_data()
    all_buttons = [*data.get("buttons", []), *({"title": b.title, "payload": b.payload} for b in buttons)]
    if all_buttons:
        data["buttons"] = all_buttons
    return BotUttered(text, data, {"utter_action": name})


def _some(*events: Event | None) -> list[Event]:
    return [e for e in events if e is not None]


@dataclass(frozen=True)
class ActionListen:
    name: str = ACTION_LISTEN

    async def run(self, ctx: ActionContext) -> list[Event]:
        return []


@dataclass(frozen=True)
class ActionRestart:
    name: str = "action_restart"

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [*_some(utter(ctx, "utter_restart")), Restarted()]


@dataclass(frozen=True)
class ActionSessionStart:
    """Starts a session; slots carry over when ``session_config`` says so (the active form does not)."""

    name: str = "action_session_start"

    async def run(self, ctx: ActionContext) -> list[Event]:
        events: list[Event] = [SessionStarted()]
        if ctx.domain.session_config.carry_over_slots_to_new_session:
            defaults = ctx.domain.slot_defaults
            for key, value in ctx.tracker.slots.items():
                if key != REQUESTED_SLOT and value != defaults.get(key):
                    events.append(SlotSet(key, value))
        return events


@dataclass(frozen=True)
class ActionDefaultFallback:
    name: str = "action_default_fallback"

    async def run(self, ctx: ActionContext) -> list[Event]:
        return _some(utter(ctx, "utter_default"))


@dataclass(frozen=True)
class ActionDeactivateLoop:
    name: str = "action_deactivate_loop"

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None)]


@dataclass(frozen=True)
class ActionBack:
    """Undo the citizen's last message and what answered it (Rasa: two rewinds, the ``/back`` one included)."""

    name: str = "action_back"

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [*_some(utter(ctx, "utter_back")), UserUtteranceReverted(), UserUtteranceReverted()]


def intent_display_name(ctx: ActionContext, intent: str) -> str:
    message = ctx.nlg.generate(f"utter_intent_name_{intent}", ctx.tracker.slots)
    return message.text if message is not None and message.text else intent


# intents that say nothing about what the citizen wants: never offered as a clarification
NON_CLARIFIABLE = {"nlu_fallback", "out_of_scope", "affirm", "deny", "inform"}


@dataclass(frozen=True)
class ActionClarifyIntent:
    """First rung of the fallback ladder: "did you mean…" with the top intents as buttons."""

    name: str = "action_clarify_intent"
    max_buttons: int = 3

    async def run(self, ctx: ActionContext) -> list[Event]:
        ranking = ctx.tracker.latest_message.get("intent_ranking") or []
        buttons = []
        for item in ranking:
            intent = item.get("name")
            if not intent or intent in NON_CLARIFIABLE or (ctx.domain.intents and intent not in ctx.domain.intents):
                continue
            buttons.append(Button(intent_display_name(ctx, intent), f"/{intent}"))
            if len(buttons) == self.max_buttons:
                break
        buttons.append(Button("都不是", "/out_of_scope"))
        return _some(utter(ctx, "utter_ask_rephrase", buttons))


@dataclass(frozen=True)
class ActionOfferHuman:
    """Second rung: after repeated failures, offer a staff member (the handoff itself is another package's)."""

    name: str = "action_offer_human"

    async def run(self, ctx: ActionContext) -> list[Event]:
        has_own = ctx.nlg.has("utter_offer_human")
        return _some(utter(ctx, "utter_offer_human", () if has_own else HUMAN_BUTTONS))


def builtin_actions() -> list[Action]:
    from assistant.actions.knowledge import ActionKnowledgeAnswer

    return [
        ActionListen(),
        ActionRestart(),
        ActionSessionStart(),
        ActionDefaultFallback(),
        ActionDeactivateLoop(),
        ActionBack(),
        ActionClarifyIntent(),
        ActionOfferHuman(),
        ActionKnowledgeAnswer(),
    ]
