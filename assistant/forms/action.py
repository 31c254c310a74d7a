"""The form loop: one action per service form, run each time the citizen answers while the form is active.

All of a form's progress lives in slots (see ``assistant.forms.state``), so a conversation restored from the
tracker store continues exactly where it was, in any process.

A turn, in order: cancel confirmation → cancel / pause → retry of a failed submission → confirmation →
filling (corrections included). A message that answers nothing and looks like a question is rejected
(``action_execution_rejected``), so the knowledge policy answers it and the form then asks its field again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.actions import ActionContext
from assistant.calendar import HolidayCalendar
from assistant.custom_actions import CustomActionError, CustomActionRunner, domain_to_rasa_dict
from assistant.events import (
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    Event,
    SlotSet,
    event_from_dict,
    event_to_dict,
)
from assistant.forms.control import Control, detect, is_digression, modify_target
from assistant.forms.extraction import Candidate, extract, free_text_candidate
from assistant.forms.masking import display, summary
from assistant.forms.outbox import OutboxStore
from assistant.forms.spec import FieldSpec, FormSpec
from assistant.forms.state import (
    PAUSED_SLOT,
    PENDING_SLOT,
    PHASE_SLOT,
    REFERENCE_SLOT,
    SKIPPED_SLOT,
    Step,
    interrupted_form,
    last_user_index,
    message_fills,
    payload,
)
from assistant.forms.submission import Receipt, Submission, SubmissionError, Submitter
from assistant.forms.validators import Verdict, format_date, parse_day, validate
from assistant.tracker import ACTION_LISTEN, REQUESTED_SLOT

log = logging.getLogger(__name__)

_KIND_HINTS = {
    "id_number": "（18位公民身份号码）",
    "phone": "（手机号码或固定电话）",
    "working_day": "（请说具体哪一天，例如“下周二”；周末和法定节假日不办理）",
}


@dataclass(frozen=True)
class FormDeps:
    """What every form action shares; built once per agent."""

    submitter: Submitter
    calendar: HolidayCalendar
    # the project's rasa-sdk actions: a ``validate_<form>`` FormValidationAction among them runs after ours
    custom_actions: CustomActionRunner | None = None
    retry_on_next_turn: bool = True
    # where a form the back office could not take waits for the background retry (``assistant.forms.outbox``)
    outbox: OutboxStore | None = None
    outbox_first_retry_s: float = 15.0


class FormAction:
    def __init__(self, form: FormSpec, deps: FormDeps) -> None:
        self.form = form
        self.name = form.name
        self.deps = deps

    # --- entry ---------------------------------------------------------------------------------------
    async def run(self, ctx: ActionContext) -> list[Event]:
        tracker = ctx.tracker
        fills, before = message_fills(tracker)
        form_fills = {k: v for k, v in fills.items() if self.form.field(k) is not None}
        # undo the mappings' guesses on our fields; whatever survives validation is set again below
        base = {k: before[k] for k in form_fills}
        step = Step(ctx, self.form, base)
        if tracker.active_loop != self.name:
            await self._activate(step, form_fills)
        elif tracker.latest_action_name != ACTION_LISTEN:
            await self._reask(step)
        else:
            rejected = await self._handle(step, form_fills)
            if rejected:
                return [ActionExecutionRejected(self.name), *step.events()]
        return step.events()

    # --- activation and re-asking ---------------------------------------------------------------------
    async def _activate(self, step: Step, fills: Mapping[str, Any]) -> None:
        step.loop.append(ActiveLoop(self.name))
        message = step.ctx.tracker.latest_message
        if step.slots.get(PAUSED_SLOT) == self.name or interrupted_form(step.ctx.tracker) == self.name:
            step.set(PAUSED_SLOT, None)
            step.say(f"好的，我们继续办理{self.form.title}。")
            # coming back with the answer itself ("身份证号是…") counts as both resuming and answering
            found = extract(self.form, message, fills, step.slots.get(REQUESTED_SLOT))
            typed = {k: c for k, c in found.candidates.items() if not (c.from_text or c.incidental)}
            if (typed or found.rejected) and step.slots.get(PHASE_SLOT) in (None, "modify"):
                errors = self._apply(step, typed, found)
                errors += await self._custom_validation(step, typed)
                self._acknowledge_corrections(step)
                await self._after_fill(step, errors)
            else:
                await self._reask(step, resumed=True)
            return
        for slot in (PHASE_SLOT, SKIPPED_SLOT, PENDING_SLOT):
            step.set(slot, None)
        step.say(f"好的，我来帮您办理{self.form.title}。")
        found = extract(self.form, message, fills, None)
        typed = {k: c for k, c in found.candidates.items() if not c.from_text}
        if not typed and not found.rejected:
            typed = self._first_answer(step, message)
        errors = self._apply(step, typed, found)
        errors += await self._custom_validation(step, typed)
        await self._after_fill(step, errors)

    def _first_answer(self, step: Step, message: Mapping[str, Any]) -> dict[str, Candidate]:
        """A bare answer that starts the form (the offer said "或直接告诉我申请人姓名"; the citizen says "李四"): the
        answer to the first field when it is one of its free-text kind and valid as such, else nothing."""
        if (message.get("intent") or {}).get("name") != "inform":
            return {}
        missing = step.missing()
        candidate = free_text_candidate(missing[0] if missing else None, str(message.get("text") or ""))
        if candidate is None:
            return {}
        first = missing[0]
        verdict = validate(first, candidate.raw, today=step.ctx.now.date(), calendar=self.deps.calendar)
        return {first.slot: candidate} if verdict.ok else {}

    async def _reask(self, step: Step, resumed: bool = False) -> None:
        phase = step.slots.get(PHASE_SLOT)
        if phase == "confirm":
            self._show_confirmation(step)
        elif phase == "cancel_confirm":
            self._ask_cancel(step)
        elif phase == "retry":
            if self.deps.retry_on_next_turn and not resumed:
                await self.submit(step)
            else:
                step.say("上次提交没有成功，回复“重试”可再次提交。", [("重试", "重试")])
        else:
            missing = step.missing()
            requested = self.form.field(step.slots.get(REQUESTED_SLOT) or "")
            if phase == "modify" and requested is not None:
                self._ask(step, requested)
            elif not missing:
                await self._complete(step)
            else:
                target = requested if requested in missing else missing[0]
                self._ask(step, target, prefix="" if resumed else "我们继续：")

    # --- one message --------------------------------------------------------------------------------
    async def _handle(self, step: Step, fills: Mapping[str, Any]) -> bool:
        """Processes the latest message; True when it is not for the form (a digression)."""
        message = step.ctx.tracker.latest_message
        text = str(message.get("text") or "")
        intent = (message.get("intent") or {}).get("name")
        confidence = float((message.get("intent") or {}).get("confidence") or 0.0)
        controls = detect(text, intent, confidence)
        phase = step.slots.get(PHASE_SLOT)
        requested = step.slots.get(REQUESTED_SLOT)
        found = extract(self.form, message, fills, requested)
        target = modify_target(text, self.form)

        if phase == "cancel_confirm":
            await self._answer_cancel(step, controls)
            return False
        if Control.CANCEL in controls and found.nothing_typed:
            step.set(PHASE_SLOT, "cancel_confirm")
            self._ask_cancel(step)
            return False
        if Control.PAUSE in controls and found.nothing_typed:
            self._pause(step)
            return False
        if Control.RESUME in controls and found.nothing_typed and target is None:
            await self._reask(step, resumed=True)
            return False
        if phase == "retry" and target is None and found.nothing_typed:
            if Control.RETRY in controls or Control.AFFIRM in controls:
                await self.submit(step)
                return False
            if self._is_digression(step, text, intent, confidence):
                return True
            if self.deps.retry_on_next_turn:
                await self.submit(step)
            else:
                step.say("上次提交没有成功，回复“重试”可再次提交。", [("重试", "重试")])
            return False
        if phase == "confirm" and target is None and found.nothing_typed:
            if Control.AFFIRM in controls:
                await self.submit(step)
                return False
            if (
                Control.DENY in controls
                or intent == "correct_slot"
                or re.fullmatch(r"(修改|更改|改一下|要改|我要修改)(信息)?", text.strip())
            ):
                self._ask_which(step)
                return False
            if self._is_digression(step, text, intent, confidence):
                return True
            step.say("请回复“确认”提交，或告诉我要修改哪一项（例如“修改电话”）。")
            self._show_confirmation(step)
            return False

        if target is not None and target.slot not in found.candidates and target.slot not in found.rejected:
            # "修改电话" / "电话写错了": ask that field again, keeping the old value until a new one comes
            step.set(PHASE_SLOT, "modify")
            step.set(REQUESTED_SLOT, target.slot)
            self._ask(step, target, prefix=f"好的，请提供新的{target.label}。", include_prompt=False)
            return False

        candidates = dict(found.candidates)
        req = self.form.field(requested or "")
        if controls & {
            Control.CANCEL,
            Control.PAUSE,
            Control.SKIP,
            Control.RESUME,
            Control.AFFIRM,
            Control.DENY,
        }:
            candidates = {k: c for k, c in candidates.items() if not c.from_text}
        if Control.SKIP in controls and req is not None and req.slot not in candidates:
            if not req.optional:
                step.say(f"{req.label}是必填项，不能跳过。/ The {req.label_en} is required.")
                self._ask(step, req)
                return False
            step.set(SKIPPED_SLOT, sorted({*(step.slots.get(SKIPPED_SLOT) or []), req.slot}))
            step.set(req.slot, None)
            await self._after_fill(step, [])
            return False
        # a question typed where free text is expected is still a question, not the answer
        only_free_text = all(c.from_text for c in candidates.values()) and not found.rejected
        if only_free_text and self._is_digression(step, text, intent, confidence, free_text=True):
            return True
        if not candidates and not found.rejected:
            if self._is_digression(step, text, intent, confidence) or controls or req is None:
                return True
            free = free_text_candidate(req, text)
            # an answer we cannot read for a typed field: validating the text gives the reason
            candidates = {req.slot: free or Candidate(text)}
        errors = self._apply(step, candidates, found)
        errors += await self._custom_validation(step, candidates)
        self._acknowledge_corrections(step)
        if phase == "modify" and (requested in step.updated or requested not in candidates):
            step.set(PHASE_SLOT, None)
        await self._after_fill(step, errors)
        return False

    def _acknowledge_corrections(self, step: Step) -> None:
        """Say what changed, masked, so the citizen knows a correction was understood; and what was taken for a
        field not asked yet (下周三上午 while the ID number was asked), so an answer given early is not lost from
        sight."""
        requested = step.before.get(REQUESTED_SLOT)
        for f in self.form.fields:
            old, new = step.before.get(f.slot), step.slots.get(f.slot)
            if f.slot not in step.updated or new in (None, "") or old == new:
                continue
            if old not in (None, ""):
                step.say(f"好的，已将{f.label}改为{display(f, new)}。", field=f.slot)
            elif requested and f.slot != requested and requested not in step.updated:
                step.say(f"好的，已记下{f.label}：{display(f, new)}。", field=f.slot)

    def _is_digression(
        self, step: Step, text: str, intent: str | None, confidence: float, free_text: bool = False
    ) -> bool:
        form = step.ctx.domain.forms.get(self.name)
        ignored = form.ignored_intents if form is not None else ()
        return is_digression(text, intent, confidence, ignored, free_text=free_text)

    # --- filling --------------------------------------------------------------------------------------
    def _apply(
        self, step: Step, candidates: Mapping[str, Candidate], found: Any
    ) -> list[tuple[FieldSpec, Verdict]]:
        errors: list[tuple[FieldSpec, Verdict]] = []
        today = step.ctx.now.date()
        for f in self.form.fields:
            if f.slot in found.rejected:
                r = found.rejected[f.slot]
                verdict = validate(f, r.raw, today=today, calendar=self.deps.calendar)
                if verdict.ok:  # the NLU's check was stricter than ours (e.g. a date it could not read)
                    verdict = Verdict(False, None, r.error or f"{f.label}无效", r.error or "invalid")
                errors.append((f, verdict))
                continue
            c = candidates.get(f.slot)
            if c is None or (c.incidental and not step.is_missing(f)):
                continue
            verdict = validate(f, c.raw, today=today, calendar=self.deps.calendar, info=c.info)
            if verdict.ok:
                step.fill(f.slot, verdict.value)
            else:
                errors.append((f, verdict))
        return errors

    async def _custom_validation(
        self, step: Step, candidates: Mapping[str, Candidate]
    ) -> list[tuple[FieldSpec, Verdict]]:
        """The project's rasa-sdk ``validate_<form>`` action, given the values we accepted, as Rasa does."""
        runner = self.deps.custom_actions
        name = f"validate_{self.name}"
        # Rasa calls validate_<form> when the domain lists it; in process we also know what the package has
        known = runner.names() if runner is not None else frozenset()
        if runner is None or not step.updated or name not in (known or step.ctx.domain.actions):
            return []
        wants = getattr(runner, "wants_validation", None)
        if wants is not None and not wants(name, frozenset(step.updated)):
            return []
        tracker = step.ctx.tracker
        data = tracker.to_rasa_json()
        data["slots"] = dict(step.slots)
        # rasa-sdk validates the slot events that end the event list (``slots_to_validate``)
        data["events"] = [event_to_dict(e) for e in tracker.events[: last_user_index(tracker)]]
        data["events"] += [event_to_dict(SlotSet(s, step.slots[s])) for s in sorted(step.updated)]
        try:
            result = await runner.run(name, data, domain_to_rasa_dict(step.ctx.domain))
        except CustomActionError as err:
            log.error("form %s: %s failed: %s", self.name, name, err.code)
            return []
        errors: list[tuple[FieldSpec, Verdict]] = []
        for raw in result.events:
            event = event_from_dict(raw)
            if not isinstance(event, SlotSet):
                continue
            f = self.form.field(event.key)
            if f is not None and event.value is None and f.slot in step.updated:
                step.updated.discard(f.slot)
                step.set(f.slot, step.before.get(f.slot))
                errors.append((f, Verdict(False)))  # the action has said why
            elif event.key == REQUESTED_SLOT or f is not None or event.key in step.slots:
                step.set(event.key, event.value)
        for r in result.responses:
            if r.get("text"):
                buttons = [(b.get("title", ""), b.get("payload", "")) for b in r.get("buttons") or []]
                step.say(str(r["text"]), buttons, custom_action=name)
        return errors

    async def _after_fill(self, step: Step, errors: list[tuple[FieldSpec, Verdict]]) -> None:
        requested = self.form.field(step.slots.get(REQUESTED_SLOT) or "")
        missing = step.missing()
        if step.slots.get(PHASE_SLOT) == "modify" and requested is not None:
            target: FieldSpec | None = requested
        elif not missing:
            target = None
        elif requested is not None and requested in missing:
            # stay on the field being asked while it is still missing; a correction elsewhere does not move us
            target = requested
        else:
            erroneous = [f for f in missing if any(f is e for e, _ in errors)]
            target = erroneous[0] if erroneous else missing[0]
        reasked = False
        for f, verdict in errors:
            if not verdict.error_zh:
                continue  # a custom validation action has already said why
            if f is target and verdict.suggestions:
                # the reason and the way out in one message: "…最近的工作日是12月7日，可以吗？" [12月7日（周一）]
                step.say(verdict.message, self._buttons(f, verdict.suggestions), field=f.slot)
                reasked = True
            else:
                step.say(verdict.message, field=f.slot)
        if target is None:
            await self._complete(step)
        elif reasked:
            step.set(REQUESTED_SLOT, target.slot)
        else:
            self._ask(step, target)

    def _buttons(self, f: FieldSpec, suggestions: Sequence[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for s in suggestions:
            day = parse_day(s) if f.kind == "working_day" else None
            out.append((format_date(day) if day else s, payload(f.slot, s)))
        if f.optional:
            out.append(("跳过", "跳过"))
        return out

    def _ask(self, step: Step, f: FieldSpec, prefix: str = "", include_prompt: bool = True) -> None:
        step.set(REQUESTED_SLOT, f.slot)
        buttons = self._buttons(f, f.values if f.kind in ("lookup", "choice") else ())
        if prefix:
            step.say(prefix, () if include_prompt else buttons)
            if not include_prompt:
                return
        if step.respond(f"utter_ask_{self.name}_{f.slot}") or step.respond(f"utter_ask_{f.slot}"):
            last = step.said[-1]
            if buttons and not last.data.get("buttons"):
                data = {**last.data, "buttons": [{"title": t, "payload": p} for t, p in buttons]}
                step.said[-1] = BotUttered(last.text, data, last.metadata)
            return
        if f.kind in ("lookup", "choice"):
            text = f"请选择{f.label}：{'、'.join(f.values)}。"
        else:
            text = f"请提供{f.label}{_KIND_HINTS.get(f.kind, '')}。"
        if f.optional:
            text += "如不需要，可回复“跳过”。"
        step.say(text, buttons, field=f.slot)

    # --- confirmation and submission ------------------------------------------------------------------
    async def _complete(self, step: Step) -> None:
        if self.form.confirm:
            step.set(PHASE_SLOT, "confirm")
            step.set(REQUESTED_SLOT, None)
            self._show_confirmation(step)
        else:
            await self.submit(step)

    def _show_confirmation(self, step: Step) -> None:
        buttons = [("确认提交", "确认"), ("修改", "修改"), ("取消", "取消")]
        if step.respond(f"utter_confirm_{self.name}", summary=summary(self.form, step.slots)):
            if not step.said[-1].data.get("buttons"):
                last = step.said[-1]
                step.said[-1] = BotUttered(last.text, {**last.data, "buttons":
                                           [{"title": t, "payload": p} for t, p in buttons]}, last.metadata)  # fmt: skip
            return
        step.say(
            f"请核对您的{self.form.title}信息：\n{summary(self.form, step.slots)}\n"
            "信息无误请回复“确认”，需要修改请告诉我要改哪一项（例如“修改电话”）。",
            buttons,
            confirmation=True,
        )

    def _ask_which(self, step: Step) -> None:
        step.say("请问要修改哪一项？", [(f"修改{f.label}", f"修改{f.label}") for f in self.form.fields])

    def submission_for(self, conversation_id: str, slots: Mapping[str, Any]) -> Submission:
        """What goes to the back office for these slot values (its idempotency key identifies it)."""
        data = {f.slot: slots.get(f.slot) for f in self.form.fields}
        return Submission(conversation_id, self.name, data, self.form.submission_target)

    async def submit(self, step: Step) -> None:
        if not self.form.submit:
            step.say(f"好的，您的{self.form.title}信息已记录。")
            self._finish(step)
            return
        tracker = step.ctx.tracker
        submission = self.submission_for(tracker.conversation_id, step.slots)
        try:
            receipt = await self.deps.submitter.submit(submission)
        except SubmissionError as err:
            pending = dict(step.slots.get(PENDING_SLOT) or {})
            attempts = int(pending.get("attempts") or 0) + 1 if pending.get("status") == "pending" else 1
            step.set(
                PENDING_SLOT,
                {"status": "pending", "form": self.name, "error": err.code, "attempts": attempts},
            )
            step.set(PHASE_SLOT, "retry")
            step.set(REQUESTED_SLOT, None)
            queued = err.retryable and self.deps.outbox is not None
            if queued:
                assert self.deps.outbox is not None
                self.deps.outbox.put(
                    submission, tracker.state.latest_input_channel, self.deps.outbox_first_retry_s
                )
            if err.retryable and step.respond("utter_submit_failed"):
                if queued:
                    step.say(
                        "受理系统恢复后会自动为您提交，并在这里告诉您受理编号。"
                        "\n(It will be submitted automatically when the back office is back; the reference number "
                        "will be shown here.)",
                        submission_error=err.code, queued=True,
                    )
                return
            if queued:
                later_zh = "受理系统恢复后会自动为您提交，并在这里告诉您受理编号；也可回复“重试”立即再试。"
                later_en = "it will be submitted automatically when the back office is back, or reply “重试” to retry now."
            else:
                auto = "，或在您下次发消息时自动重试" if self.deps.retry_on_next_turn else ""
                later_zh = f"回复“重试”可再次提交{auto}。"
                later_en = "reply “重试” to try again."
            step.say(
                f"抱歉，{self.form.title}暂时没有提交成功（{err.message_zh}）。您填写的信息已为您保留，{later_zh}"
                f"\nSorry, the submission did not go through ({err.message_en}). Your information is kept; {later_en}",
                [("重试", "重试"), ("取消", "取消")],
                submission_error=err.code,
                queued=queued,
            )
            return
        self._submitted(step, receipt)

    def receipt_events(self, ctx: ActionContext, receipt: Receipt, *, later: bool) -> list[Event]:
        """The events of a successful submission made outside a turn (the outbox's background retry)."""
        step = Step(ctx, self.form, {})
        self._submitted(step, receipt, later=later)
        return step.events()

    def _submitted(self, step: Step, receipt: Receipt, *, later: bool = False) -> None:
        step.set(REFERENCE_SLOT, receipt.reference)
        step.set(PENDING_SLOT, {"status": "submitted", "form": self.name, "reference": receipt.reference})
        self._finish(step)
        if later:
            # the citizen may have moved on: say which application this is about
            step.say(
                f"您之前确认的{self.form.title}已在受理系统恢复后自动提交成功，受理编号：{receipt.reference}。"
                "请保存好编号，可凭编号查询办理进度。"
                f"\nYour {self.form.title} application has now been submitted; reference {receipt.reference}.",
                reference=receipt.reference,
                outbox="submitted",
            )
            return
        if step.respond("utter_submit_success"):
            return
        step.say(
            f"提交成功！您的{self.form.title}已受理，受理编号：{receipt.reference}。请保存好编号，可凭编号查询办理进度。",
            reference=receipt.reference,
        )

    def _finish(self, step: Step) -> None:
        # the data has gone to the back office; it does not linger in the conversation's slots
        for f in self.form.fields:
            step.set(f.slot, None)
        for slot in (PHASE_SLOT, SKIPPED_SLOT, REQUESTED_SLOT):
            step.set(slot, None)
        if (step.slots.get(PENDING_SLOT) or {}).get("status") == "pending":
            step.set(PENDING_SLOT, None)
        step.loop.append(ActiveLoop(None))

    # --- cancel and pause ------------------------------------------------------------------------------
    def _ask_cancel(self, step: Step) -> None:
        step.say(
            f"确定要取消{self.form.title}吗？取消后已填写的信息将被清除。",
            [("确定取消", "确定取消"), ("继续办理", "继续办理")],
        )

    async def _answer_cancel(self, step: Step, controls: set[Control]) -> None:
        if controls & {Control.DENY, Control.RESUME}:
            pending = (step.slots.get(PENDING_SLOT) or {}).get("status") == "pending"
            step.set(PHASE_SLOT, "retry" if pending else None)
            step.say("好的，我们继续办理。")
            await self._reask(step, resumed=True)
            return
        if controls & {Control.AFFIRM, Control.CANCEL}:
            step.say(f"已为您取消{self.form.title}，填写的信息已清除。如需办理可随时再找我。")
            self._finish(step)
            return
        self._ask_cancel(step)

    def _pause(self, step: Step) -> None:
        step.set(PAUSED_SLOT, self.name)
        step.loop.append(ActiveLoop(None))
        step.say(
            f"好的，不着急。您已填写的{self.form.title}信息会为您保留，准备好后回复“继续”即可接着办理。",
            [("继续", "继续")],
        )
