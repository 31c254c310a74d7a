"""The dashboard's figures from a scripted set of conversations, counted by hand, on SQLite and on PostgreSQL.

The events are written with the real ``SQLTrackerStore`` in the shapes the engine records them (knowledge answers
with citations, abstentions, fallbacks, form questions, handoff transitions, staff replies); the handoff episodes
with the real ``HandoffStore``, ratings with the real ``FeedbackStore`` and unanswered questions in the real
knowledge schema (Alembic migrations). Days are Asia/Shanghai days: a message at 23:59 and one two minutes later
fall on different dates although both are on the same UTC date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from assistant.analytics import Analytics
from assistant.events import ActionExecuted, BotUttered, CustomEvent, Event, UserUttered
from assistant.feedback import FeedbackStore
from assistant.handoff.store import CLOSED, WAITING, WITH_AGENT, HandoffStore
from assistant.store import SQLTrackerStore

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=SH).timestamp()


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> float:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=SH).timestamp()


def user(text: str, intent: str, ts: float, channel: str = "webchat") -> UserUttered:
    return UserUttered(text, {"text": text, "intent": {"name": intent, "confidence": 0.9}}, channel, None, {}, timestamp=ts)


def bot(utter: str, ts: float, **extra: Any) -> list[Event]:
    data = {"citations": [{"title": "居民身份证换领", "section": "所需材料"}]} if extra.pop("cited", False) else {}
    return [ActionExecuted(utter, timestamp=ts), BotUttered("……", data, {"utter_action": utter, **extra}, timestamp=ts)]


def staff(ts: float) -> BotUttered:
    return BotUttered("您好，我是工作人员", {"custom": {"handoff": {"from": "agent"}}}, {"handoff_agent": "a1"}, timestamp=ts)


def handoff(name: str, frm: str, to: str, ts: float) -> CustomEvent:
    return CustomEvent("handoff", {"transition": name, "from": frm, "to": to}, timestamp=ts)


def script(store: SQLTrackerStore) -> None:
    # A, 10 March: answered from the knowledge base; a follow-up it abstains on; an NLU fallback
    store.append("conv-a", [user("身份证过期了怎么换", "ask_idcard", at(10, 9)),
                            *bot("action_knowledge_answer", at(10, 9, 0, 2), cited=True)])
    store.append("conv-a", [user("那要带什么材料", "ask_materials", at(10, 9, 1)),
                            *bot("action_knowledge_answer", at(10, 9, 1, 2), abstained=True)])
    store.append("conv-a", [user("嗯嗯嗯", "nlu_fallback", at(10, 9, 2)), *bot("utter_default", at(10, 9, 2, 1))])
    # B: a form question one minute before midnight (9 March), then handoff after midnight (10 March)
    store.append("conv-b", [user("帮我预约换身份证", "book_idcard", at(9, 23, 59)),
                            ActionExecuted("idcard_form", timestamp=at(9, 23, 59, 1)),
                            *bot("utter_ask_applicant_name", at(9, 23, 59, 1))])
    store.append("conv-b", [user("转人工", "request_human", at(10, 0, 0, 30)),
                            handoff("queued", "bot", WAITING, at(10, 0, 0, 31)),
                            *bot("utter_handoff_queued", at(10, 0, 0, 31))])
    store.append("conv-b", [handoff("claimed", WAITING, WITH_AGENT, at(10, 0, 0, 50)), staff(at(10, 0, 0, 50))])
    # the citizen writes while paused: only staff answer it
    store.append("conv-b", [user("在吗", "greet", at(10, 0, 1)), staff(at(10, 0, 1, 40)),
                            handoff("transferred", WITH_AGENT, WAITING, at(10, 0, 2)),
                            handoff("claimed", WAITING, WITH_AGENT, at(10, 0, 3)),
                            handoff("closed", WITH_AGENT, "bot", at(10, 0, 4))])
    # C, 8 March: the knowledge base was unavailable; a greeting; staff take over from the live list; a thank-you
    # nobody answered
    store.append("conv-c", [user("火星移民补贴", "out_of_scope", at(8, 10)),
                            *bot("action_knowledge_answer", at(8, 10, 0, 1))])
    store.append("conv-c", [user("你好", "greet", at(8, 10, 1)), *bot("utter_greet", at(8, 10, 1, 1)),
                            handoff("taken_over", "bot", WITH_AGENT, at(8, 10, 5)), staff(at(8, 10, 5, 30))])
    store.append("conv-c", [user("谢谢", "thank", at(8, 10, 6))])
    # D, 7 March: outside a three-day window, though its answer arrived after midnight
    store.append("conv-d", [user("要多少钱", "ask_fee", at(7, 23, 59, 59)), handoff("queued", "bot", WAITING, at(7, 23, 59, 59)),
                            *bot("utter_handoff_queued", at(8, 0, 0, 10))])
    # E, 10 March: the fallback ladder, then handoff asked, cancelled, asked again (one conversation entering)
    store.append("conv-e", [user("随便", "nlu_fallback", at(10, 11)), *bot("utter_ask_rephrase", at(10, 11, 0, 1))])
    store.append("conv-e", [user("还是不行", "nlu_fallback", at(10, 11, 1)), *bot("utter_offer_human", at(10, 11, 1, 1))])
    store.append("conv-e", [user("/request_human", "request_human", at(10, 11, 2)),
                            handoff("queued", "bot", WAITING, at(10, 11, 2, 1)), *bot("utter_handoff_queued", at(10, 11, 2, 1))])
    store.append("conv-e", [user("/handoff_cancel", "handoff_cancel", at(10, 11, 3)),
                            handoff("cancelled", WAITING, "bot", at(10, 11, 3, 1)),
                            *bot("utter_handoff_cancelled", at(10, 11, 3, 1))])
    store.append("conv-e", [user("转人工", "request_human", at(10, 11, 4)),
                            handoff("queued", "bot", WAITING, at(10, 11, 4, 1)), *bot("utter_handoff_queued", at(10, 11, 4, 1))])


def episodes(store: HandoffStore) -> None:
    """Handoff episodes rated inside the dialogue (``handoff_sessions.rating``)."""
    for cid, rating, ended in (("conv-b", 4, at(10, 0, 4)), ("conv-a", 3, at(10, 9, 30)), ("conv-d", 1, at(7, 23, 59))):
        s = store.open(cid, "webchat", "request", "general", ended - 60)
        assert s is not None
        assert store.transition(s.id, (WAITING,), CLOSED, ended_at=ended, outcome="resolved") is not None
        assert store.rate(cid, rating) is not None


def ratings(engine: Any) -> None:
    for cid, score, when in (("conv-a", 5, at(10, 9, 40)), ("conv-e", 2, at(10, 11, 30)), ("conv-d", 1, at(7, 23, 59, 59))):
        FeedbackStore(engine, clock=lambda when=when: when).add(cid, score, None, "webchat")


def unanswered(url: str) -> Any:
    from knowledge.db import UnansweredQuestion, make_engine, make_session_factory, migrate

    engine = make_engine(url)
    migrate(engine)
    sessions = make_session_factory(engine)

    def utc(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, UTC)

    with sessions() as s, s.begin():
        # written as an older version stored it, unmasked: the dashboard masks whatever it reads
        for text, count, last, handled in (
            ("我的手机13912345678收不到验证码", 7, at(10, 8), False),
            ("护照怎么办理", 3, at(9, 8), False),
            ("很久以前问的问题", 50, at(1, 8), False),
            ("已经处理的问题", 20, at(10, 8), True),
        ):
            s.add(UnansweredQuestion(query=text, normalized=text, count=count, first_asked=utc(last - 3600),
                                     last_asked=utc(last), handled=handled, near_miss_keys=[]))
    return sessions


def test_figures_by_hand(db_url: str) -> None:
    store = SQLTrackerStore(db_url)
    script(store)
    episodes(HandoffStore(store.engine))
    ratings(store.engine)
    sessions = unanswered(db_url)
    analytics = Analytics(store.engine, FeedbackStore(store.engine), sessions, clock=lambda: NOW)

    out = analytics.dashboard(3)

    assert out["days"] == [
        {"date": "2026-03-08", "questions": 3, "answered": 1, "handoffs": 1},
        {"date": "2026-03-09", "questions": 1, "answered": 1, "handoffs": 0},
        {"date": "2026-03-10", "questions": 10, "answered": 6, "handoffs": 2},
    ]
    assert out["answer_rate"] == round(8 / 14, 4)
    assert out["handoff_rate"] == 0.75  # B, C, E of A, B, C, E
    assert out["top_intents"] == [
        {"intent": "nlu_fallback", "count": 3}, {"intent": "request_human", "count": 3}, {"intent": "greet", "count": 2},
        {"intent": "ask_idcard", "count": 1}, {"intent": "ask_materials", "count": 1}, {"intent": "book_idcard", "count": 1},
        {"intent": "handoff_cancel", "count": 1}, {"intent": "out_of_scope", "count": 1}, {"intent": "thank", "count": 1},
    ]
    assert out["top_unanswered"] == [
        {"question": "我的手机139****5678收不到验证码", "count": 7}, {"question": "护照怎么办理", "count": 3},
    ]
    # widget ratings of A (5) and E (2); B's rating in the chat (4); A's chat rating is the same service as its
    # widget rating; D's are before the window
    assert out["satisfaction"] == {"average": 3.67, "count": 3,
                                   "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}}

    # one day: today only
    today = analytics.compute(1, NOW)
    assert [d["date"] for d in today["days"]] == ["2026-03-10"]
    assert today["answer_rate"] == 0.6 and today["handoff_rate"] == round(2 / 3, 4)


def test_empty_database_has_zero_figures(db_url: str) -> None:
    store = SQLTrackerStore(db_url)
    out = Analytics(store.engine, FeedbackStore(store.engine), clock=lambda: NOW).dashboard(14)
    assert len(out["days"]) == 14 and out["days"][-1] == {"date": "2026-03-10", "questions": 0, "answered": 0,
                                                            "handoffs": 0}
    assert out["days"][0]["date"] == "2026-02-25"
    assert (out["answer_rate"], out["handoff_rate"], out["top_intents"], out["top_unanswered"]) == (0.0, 0.0, [], [])
    assert out["satisfaction"] == {"average": None, "count": 0, "distribution": {str(i): 0 for i in range(1, 6)}}


def test_results_are_cached_for_a_while(tmp_path: Any) -> None:
    store = SQLTrackerStore(f"sqlite:///{tmp_path / 'c.db'}")
    clock = [NOW]
    analytics = Analytics(store.engine, FeedbackStore(store.engine), clock=lambda: clock[0], cache_seconds=30)
    assert analytics.dashboard(1)["days"][0]["questions"] == 0
    store.append("x", [user("你好", "greet", NOW)])
    clock[0] = NOW + 10
    assert analytics.dashboard(1)["days"][0]["questions"] == 0  # within 30 s: the cached figures
    clock[0] = NOW + 31
    assert analytics.dashboard(1)["days"][0]["questions"] == 1


@pytest.mark.parametrize("days", [0, -3, 10_000])
def test_window_is_clamped(tmp_path: Any, days: int) -> None:
    store = SQLTrackerStore(f"sqlite:///{tmp_path / 'w.db'}")
    out = Analytics(store.engine, FeedbackStore(store.engine), clock=lambda: NOW).dashboard(days)
    assert 1 <= len(out["days"]) <= 366


def test_knowledge_sessions_are_optional(tmp_path: Any) -> None:
    store = SQLTrackerStore(f"sqlite:///{tmp_path / 'k.db'}")
    analytics = Analytics(store.engine, FeedbackStore(store.engine), None, clock=lambda: NOW)
    assert analytics.dashboard(2)["top_unanswered"] == []


def test_completed_days_are_kept_as_counts_and_outlive_deleted_transcripts(db_url: str) -> None:
    from sqlalchemy import delete, func, inspect, select

    from assistant.analytics import DailyIntentRow, DailyRow
    from assistant.store import EventRow

    store = SQLTrackerStore(db_url)
    script(store)
    first = Analytics(store.engine, FeedbackStore(store.engine), clock=lambda: NOW, cache_seconds=0)
    before = first.dashboard(3)
    with store.engine.connect() as conn:
        kept = {r.day: (r.questions, r.answered, r.handoffs) for r in conn.execute(select(DailyRow))}
        intents = conn.scalar(select(func.count()).select_from(DailyIntentRow))
    # the completed days only (today is computed from the events on every request)
    assert kept == {"2026-03-08": (3, 1, 1), "2026-03-09": (1, 1, 0)}
    assert intents == 4  # out_of_scope, greet, thank on the 8th; book_idcard on the 9th
    # counts only: nothing in the rollup names a conversation
    for table in ("analytics_daily", "analytics_daily_intents"):
        assert {c["name"] for c in inspect(store.engine).get_columns(table)} <= {
            "day", "questions", "answered", "handoffs", "computed_at", "intent", "count"}

    # retention deletes conversation C (8 March): the kept day stays; a second replica reads the same
    with store.engine.begin() as conn:
        conn.execute(delete(EventRow).where(EventRow.conversation_id == "conv-c"))
    replica = Analytics(store.engine, FeedbackStore(store.engine), clock=lambda: NOW, cache_seconds=0)
    after = replica.dashboard(3)
    assert after["days"] == before["days"]
    assert after["top_intents"] == before["top_intents"]
    # recomputing on purpose sees the deletion
    replica.forget_days()
    assert replica.dashboard(3)["days"][0] == {"date": "2026-03-08", "questions": 0, "answered": 0, "handoffs": 0}


def test_just_after_midnight_yesterday_is_not_final_and_late_answers_count(tmp_path: Any) -> None:
    from sqlalchemy import select

    from assistant.analytics import DailyRow

    store = SQLTrackerStore(f"sqlite:///{tmp_path / 'm.db'}")
    store.append("late", [user("公积金怎么提取", "ask_housing_fund", at(9, 23, 59, 50))])
    clock = [at(10, 0, 0, 5)]
    analytics = Analytics(store.engine, FeedbackStore(store.engine), clock=lambda: clock[0], cache_seconds=0)
    assert analytics.dashboard(2)["days"][0] == {"date": "2026-03-09", "questions": 1, "answered": 0, "handoffs": 0}
    with store.engine.connect() as conn:
        assert conn.execute(select(DailyRow.day)).all() == []  # not kept yet: answers may still arrive
    store.append("late", bot("action_knowledge_answer", at(10, 0, 0, 20), cited=True))
    clock[0] = at(10, 0, 20)  # the grace period is over: 9 March is kept, with its late answer
    assert analytics.dashboard(2)["days"][0] == {"date": "2026-03-09", "questions": 1, "answered": 1, "handoffs": 0}
    with store.engine.connect() as conn:
        assert [r.day for r in conn.execute(select(DailyRow.day))] == ["2026-03-09"]
