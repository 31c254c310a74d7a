"""A form's progress as slots, and the working state of one run of the form loop.

Everything a form knows between messages is in slots (its fields, ``requested_slot`` and the ``form_*`` slots
below), so a conversation restored from the tracker store continues exactly where it was, in any process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from assistant.actions import ActionContext
from assistant.events import ActiveLoop, BotUttered, Event, Restarted, SessionStarted, SlotSet, UserUttered
from assistant.forms.masking import masked_slots
from assistant.forms.spec import FieldSpec, FormSpec
from assistant.tracker import Tracker, replay

# the form's own state, next to its fields
PHASE_SLOT = "form_phase"  # None (filling) | "confirm" | "cancel_confirm" | "modify" | "retry"
SKIPPED_SLOT = "form_skipped"  # optional fields the citizen chose not to fill
PAUSED_SLOT = "paused_form"  # a form set aside with "等一下", resumed with "继续"
# the latest submission: {status: "pending", form, error, attempts} after a failure (kept for a retry),
# {status: "submitted", form, reference} after success; the names match the demo domain's slots
PENDING_SLOT = "submission"
REFERENCE_SLOT = "reference_number"  # the back office's reference of the latest submission
INTERNAL_SLOTS = (PHASE_SLOT, SKIPPED_SLOT, PAUSED_SLOT, PENDING_SLOT, REFERENCE_SLOT)


def payload(slot: str, value: str) -> str:
    return "/inform" + json.dumps({slot: value}, ensure_ascii=False)


class Step:
    """The working state of one run: slot values as they will be, and what to say."""

    def __init__(self, ctx: ActionContext, form: FormSpec, base: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.form = form
        self.current = dict(ctx.tracker.slots)
        self.slots = dict(ctx.tracker.slots)
        self.slots.update(base)
        # values before the latest message: what a rejected answer reverts to
        self.before = dict(self.slots)
        self.said: list[BotUttered] = []
        self.loop: list[Event] = []
        self.updated: set[str] = set()

    def set(self, slot: str, value: Any) -> None:
        self.slots[slot] = value

    def fill(self, slot: str, value: Any) -> None:
        self.slots[slot] = value
        self.updated.add(slot)
        skipped = list(self.slots.get(SKIPPED_SLOT) or [])
        if slot in skipped:
            skipped.remove(slot)
            self.slots[SKIPPED_SLOT] = skipped or None

    def say(self, text: str, buttons: Sequence[tuple[str, str]] = (), **meta: Any) -> None:
        data: dict[str, Any] = {}
        if buttons:
            data["buttons"] = [{"title": t, "payload": p} for t, p in buttons]
        self.said.append(BotUttered(text, data, {"form": self.form.name, **meta}))

    def respond(self, name: str, **values: Any) -> bool:
        """A domain response if the project defines it (masked values fill its placeholders)."""
        nlg = self.ctx.nlg
        if not nlg.has(name):
            return False
        masked = masked_slots(self.form, self.slots)
        msg = nlg.generate(name, self.slots, self.ctx.tracker.state.latest_input_channel, **masked, **values)
        if msg is None:
            return False
        self.said.append(
            BotUttered(msg.text, msg.event_data(), {"form": self.form.name, "utter_action": name})
        )
        return True

    def is_missing(self, f: FieldSpec) -> bool:
        if f.slot in (self.slots.get(SKIPPED_SLOT) or []):
            return False
        return self.slots.get(f.slot) in (None, "")

    def missing(self) -> list[FieldSpec]:
        return [f for f in self.form.fields if self.is_missing(f)]

    def events(self) -> list[Event]:
        out: list[Event] = list(self.loop)
        for slot, value in self.slots.items():
            if self.current.get(slot, None) != value:
                out.append(SlotSet(slot, value))
        return out + list(self.said)


def message_fills(tracker: Tracker) -> tuple[dict[str, Any], dict[str, Any]]:
    """Slots the engine's mappings set from the latest message, and their values before it."""
    events = tracker.events
    last_user = max((i for i, e in enumerate(events) if isinstance(e, UserUttered)), default=-1)
    fills = {e.key: e.value for e in events[last_user + 1 :] if isinstance(e, SlotSet)}
    if not fills:
        return {}, {}
    before = replay(events[: last_user + 1], tracker.slot_defaults).slots
    return fills, {k: before.get(k) for k in fills}


def interrupted_form(tracker: Tracker) -> str | None:
    """The form a new session cut off (the citizen came back after the session expired): it was never
    finished, cancelled or paused, so "继续" should pick it up like a paused one."""
    loop: str | None = None
    cut = False
    for e in tracker.events:
        if isinstance(e, ActiveLoop):
            loop, cut = e.name, False
        elif isinstance(e, Restarted):
            loop, cut = None, False
        elif isinstance(e, SessionStarted) and loop is not None:
            cut = True
    return loop if cut and tracker.active_loop is None else None


def last_user_index(tracker: Tracker) -> int:
    return max((i for i, e in enumerate(tracker.events) if isinstance(e, UserUttered)), default=-1) + 1
