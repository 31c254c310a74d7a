"""Form actions a project's rules and stories may call by name besides the forms themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from assistant.actions import ActionContext
from assistant.events import BotUttered, Event, SlotSet
from assistant.forms.action import FormAction
from assistant.forms.spec import FormSpec
from assistant.forms.state import PAUSED_SLOT, PENDING_SLOT, PHASE_SLOT, SKIPPED_SLOT, Step


class SubmitFormAction:
    """``action_submit_form``: submits the form awaiting confirmation, or retries a pending submission, when a
    rule or story asks for it (the form loop itself submits on "确认" and retries on its own)."""

    name = "action_submit_form"

    def __init__(self, forms: Mapping[str, FormAction]) -> None:
        self._forms = dict(forms)

    async def run(self, ctx: ActionContext) -> list[Event]:
        slots = ctx.tracker.slots
        pending = slots.get(PENDING_SLOT) or {}
        name = pending.get("form") if pending.get("status") == "pending" else None
        if (
            name is None
            and ctx.tracker.active_loop in self._forms
            and slots.get(PHASE_SLOT) in ("confirm", "retry")
        ):
            name = ctx.tracker.active_loop
        form = self._forms.get(name or "")
        if form is None:
            return [
                BotUttered(
                    "目前没有待提交的申请。/ There is nothing to submit.", {}, {"utter_action": self.name}
                )
            ]
        step = Step(ctx, form.form, {})
        await form.submit(step)
        return step.events()


class ResetFormSlotsAction:
    """``action_reset_form_slots``: forgets every form's fields and progress (e.g. a rule after "重新开始")."""

    name = "action_reset_form_slots"

    def __init__(self, forms: Sequence[FormSpec]) -> None:
        self._slots = sorted(
            {f.slot for form in forms for f in form.fields} | {PHASE_SLOT, SKIPPED_SLOT, PAUSED_SLOT}
        )

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [SlotSet(s, None) for s in self._slots if ctx.tracker.slots.get(s) is not None]
