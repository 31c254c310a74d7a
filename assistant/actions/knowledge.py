"""``action_knowledge_answer``: answer a policy question from the knowledge base, with citations, or say
honestly that we do not know and offer the near misses as "did you mean" buttons.

A follow-up question ("那要带什么材料？") is searched together with the topic being discussed, so it resolves
against the conversation rather than the whole knowledge base: the title of the document the last answer cited
(the most specific topic), unless the citizen has named another service since (the service slot).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assistant.actions import ActionContext
from assistant.actions.builtin import utter
from assistant.domain import Button, Domain
from assistant.events import ActionExecutionRejected, BotUttered, Event, SlotSet, UserUttered
from assistant.tracker import Tracker

SERVICE_SLOT = "current_service"
# slots a domain may declare for "the service being discussed", in order of preference
SERVICE_SLOTS = (SERVICE_SLOT, "service")
ABSTAIN_TEXT = "抱歉，这个问题我还不知道准确答案，建议咨询窗口工作人员或拨打12345热线。(Sorry, I don't know the answer to that.)"
NEAR_MISS_TEXT = "您是不是想问："
# the question is in the knowledge base's territory but sits between close entries (两条都讲身份证过期):
# ask which one rather than claim not to know
CLARIFY_TEXT = "我找到了几条相关的内容，但不确定哪一条最符合您的问题。请选择最接近的一条，或换个说法再问一次："
UNAVAILABLE_TEXT = "抱歉，政策知识库暂时不可用，请稍后再试。(The policy knowledge base is unavailable; please try again later.)"


def is_followup_intent(intent: str | None, followup_intents: Iterable[str] | None) -> bool:
    if intent is None:
        return False
    if followup_intents is None:
        # by convention the demo's follow-up questions are ask_materials, ask_location, ask_fee, …
        return intent.startswith("ask_")
    return intent in set(followup_intents)


_LEAD_IN = re.compile(r"^(?:那么|那请问|请问|那个|还有|那)[，,、\s]*")


def conversation_topic(tracker: Tracker, slot: str) -> str | None:
    """The latest of: the title the last answer cited, or a newer value of the service slot."""
    for e in reversed(tracker.applied_events()):
        if isinstance(e, SlotSet) and e.key == slot and e.value:
            return str(e.value)
        if isinstance(e, BotUttered) and e.data.get("citations") and not e.metadata.get("abstained"):
            title = e.data["citations"][0].get("title")
            if title:
                return str(title)
    value = tracker.get_slot(slot)
    return str(value) if value else None


def topic_question(tracker: Tracker, slot: str, topic: str) -> str:
    """The citizen's own question that named the service ``topic`` ("身份证过期了怎么换" rather than "身份证"):
    a follow-up searched with it finds the right guide, not any guide about a similar document."""
    events = tracker.applied_events()
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if isinstance(e, SlotSet) and e.key == slot and e.value == topic:
            asked = next((u for u in reversed(events[:i]) if isinstance(u, UserUttered)), None)
            if asked is not None and topic in (asked.text or "") and not asked.text.startswith("/"):
                return asked.text.strip()
            break
    return topic


def rewrite_query(text: str, message: Mapping[str, Any], topic: str | None, followup: bool) -> str:
    """``"那要带什么材料？"`` about ``居民身份证换领`` -> ``"居民身份证换领 要带什么材料？"``. Left alone when the
    message names a service itself, when nothing is being discussed, or when it is not a follow-up question."""
    if not followup or not topic or topic in text:
        return text
    if any(e.get("entity") == "service" for e in message.get("entities") or []):
        return text
    return f"{topic} {_LEAD_IN.sub('', text.strip()) or text}"


def citation_dict(citation: Any) -> dict[str, Any]:
    effective = getattr(citation, "effective_date", None)
    return {
        "title": citation.title,
        "section": citation.section,
        "version": citation.version,
        "effective_date": effective.isoformat() if effective is not None else None,
        "source_url": citation.source_url,
        "document_id": getattr(citation, "document_id", None),
    }


def _near_miss_buttons(hits: Iterable[Any], limit: int) -> list[Button]:
    seen: set[str] = set()
    out: list[Button] = []
    for hit in hits:
        passage = hit.passage
        if passage.kind == "faq":
            question = passage.text
        else:
            c = passage.citation
            question = f"{c.title} {c.section}" if c.section else c.title
        question = question.strip()
        if not question or question in seen:
            continue
        seen.add(question)
        title = question if len(question) <= 24 else question[:23] + "…"
        out.append(Button(title, question))
        if len(out) == limit:
            break
    return out


# which part of a service guide answers each follow-up, in order of preference (section titles or FAQ questions)
FOLLOWUP_SECTIONS: dict[str, tuple[str, ...]] = {
    "ask_materials": ("所需材料", "申请材料", "材料", "证件", "带什么"),
    "ask_location": ("办理地点", "地点", "地址", "窗口", "在哪", "哪里", "办理流程"),
    "ask_fee": ("收费", "费用", "工本费", "多少钱"),
    "ask_office_hours": ("办理时间", "工作时间", "几点", "上班"),
    "ask_progress": ("办理时限", "时限", "进度", "多久", "几天"),
    "ask_process": ("办理流程", "流程", "步骤"),
}


def pick_in_topic(hits: Iterable[Any], topic: str, keywords: Iterable[str]) -> Any | None:
    """The hit from the document being discussed whose section (or FAQ question) fits the follow-up; the
    document's title is in every chunk, so plain ranking would favour its shortest section instead."""
    in_topic = [h for h in hits if h.passage.citation.title == topic]
    for keyword in keywords:
        for h in in_topic:
            label = f"{h.passage.citation.section or ''} {h.passage.text if h.passage.kind == 'faq' else ''}"
            if keyword in label:
                return h
    return None


def service_slot(domain: Domain) -> str:
    """The slot holding the service under discussion: the domain's own (``current_service`` or ``service``),
    else ``current_service`` kept by ``service_context``."""
    return next((s for s in SERVICE_SLOTS if s in domain.slots), SERVICE_SLOT)


@dataclass(frozen=True)
class ActionKnowledgeAnswer:
    name: str = "action_knowledge_answer"
    service_slot: str | None = None  # None: ``service_slot(domain)``
    followup_intents: tuple[str, ...] | None = None
    k: int = 5
    max_suggestions: int = 3
    # a near miss at least this likely to be right (calibrated score) makes the reply a clarifying question
    clarify_score: float = 0.3

    def query(self, ctx: ActionContext) -> tuple[str, str | None, str | None]:
        """The query to search, the topic it was resolved against (if any) and the follow-up intent."""
        message = ctx.tracker.latest_message
        text = str(message.get("text") or "")
        intent = (message.get("intent") or {}).get("name")
        followup = is_followup_intent(intent, self.followup_intents)
        slot = self.service_slot or service_slot(ctx.domain)
        topic = conversation_topic(ctx.tracker, slot) if followup else None
        context = topic_question(ctx.tracker, slot, topic) if topic else None
        query = rewrite_query(text, message, context, followup)
        return query, topic if query != text else None, intent if followup else None

    async def run(self, ctx: ActionContext) -> list[Event]:
        if ctx.knowledge is None:
            return [BotUttered(UNAVAILABLE_TEXT, {}, {"utter_action": self.name})]
        query, topic, followup = self.query(ctx)
        keywords = FOLLOWUP_SECTIONS.get(followup or "", ())
        k = max(self.k, 20) if topic and keywords else self.k
        # embedding and index search are CPU work: keep the event loop free for other conversations
        result = await asyncio.to_thread(ctx.knowledge.search, query, k)
        meta = {"utter_action": self.name, "knowledge_query": query}
        hit = pick_in_topic(result.hits, topic, keywords) if topic and keywords else None
        if hit is None and topic and keywords and not result.answered and result.hits:
            # the question in context found its guide but no confident passage: answer the follow-up from that
            # guide's matching section ("所需材料") rather than not at all
            hit = pick_in_topic(result.hits, result.hits[0].passage.citation.title, keywords)
        if hit is not None:
            text = hit.passage.answer or hit.passage.text
            return [BotUttered(text, {"citations": [citation_dict(hit.passage.citation)]}, meta)]
        if result.answered and result.answer:
            citations = [citation_dict(c) for c in result.citations]
            return [BotUttered(result.answer, {"citations": citations}, meta)]
        if ctx.prediction is not None and ctx.prediction.metadata.get("only_if_known"):
            # tried on the chance the knowledge base knows: it does not, so let the next policy answer
            return [ActionExecutionRejected(self.name)]
        buttons = _near_miss_buttons(result.hits, self.max_suggestions)
        data: dict[str, Any] = {}
        if buttons:
            data["buttons"] = [{"title": b.title, "payload": b.payload} for b in buttons]
        if buttons and max(h.score for h in result.hits) >= self.clarify_score:
            own = utter(ctx, "utter_knowledge_clarify")
            text = own.text if own is not None and own.text else CLARIFY_TEXT
            return [BotUttered(text, data, {**meta, "abstained": True, "clarify": True})]
        own = utter(ctx, "utter_knowledge_abstain")
        text = own.text if own is not None and own.text else ABSTAIN_TEXT
        if buttons:
            text = f"{text}\n{NEAR_MISS_TEXT}"
        return [BotUttered(text, data, {**meta, "abstained": True})]


def service_context(domain: Domain, tracker: Tracker) -> list[Event]:
    """Keeps ``current_service`` from a ``service`` entity when the domain declares no service slot itself
    (a domain that does fills it with ordinary mappings, e.g. ``from_trigger_intent`` per service)."""
    if any(s in domain.slots for s in SERVICE_SLOTS):
        return []
    for e in reversed(list(tracker.latest_message.get("entities") or [])):
        if e.get("entity") == "service" and e.get("valid") is not False and e.get("value"):
            value = str(e["value"])
            return [SlotSet(SERVICE_SLOT, value)] if tracker.get_slot(SERVICE_SLOT) != value else []
    return []
