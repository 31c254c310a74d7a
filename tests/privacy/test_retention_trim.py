"""Retention trims conversations still in use, on SQLite and PostgreSQL: a citizen who keeps writing in one
conversation (a WeChat openid, a browser's web chat session) loses the sessions that ended before the cutoff, with
the form values in them, while the session running at the cutoff and everything after it stay, and the agent goes
on in the same conversation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from privacy_helpers import DAY, ID_NUMBER, NAME, NOW, PHONE, World, days_ago
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

from assistant.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
    event_to_dict,
)
from assistant.privacy import PrivacyConfig
from assistant.retention import KEPT_OPEN_HANDOFF, KEPT_OPEN_TICKET, KEPT_PENDING_FORM, Retention
from assistant.store import EventRow, SQLTrackerStore, make_engine

SECRETS = (ID_NUMBER, PHONE, NAME)
NEW_PHONE = "13800001111"


# the old form session is 15 events; the next session opens with action_session_start (16), session_started (17)
OLD_EVENTS = 16
FIRST_KEPT = 17


@pytest.fixture()
def another(db_url: str) -> Iterator[Callable[[], Engine]]:
    """Engines of other processes on the same database, closed after the test."""
    made: list[Engine] = []

    def make() -> Engine:
        made.append(make_engine(db_url))
        return made[-1]

    yield make
    for eng in made:
        eng.dispose()


def _retention(w: World, clock: float = NOW) -> Retention:
    return Retention(w.engine, PrivacyConfig(), audit=w.accounts.audit, clock=lambda: clock)


def _middle_session(at: float) -> list[Event]:
    """A later session as the agent writes it: the slots carried over are set again right after the boundary."""
    return [
        ActionExecuted("action_session_start", timestamp=at),
        SessionStarted(timestamp=at),
        SlotSet("reference_number", "SZ2026001", timestamp=at),
        ActionExecuted("action_listen", timestamp=at),
        UserUttered(f'/inform{{"phone": "{NEW_PHONE}"}}', {"intent": {"name": "inform"}}, "rest", timestamp=at),
        SlotSet("phone", NEW_PHONE, timestamp=at),
        BotUttered("好的", timestamp=at + 1),
        ActionExecuted("action_listen", timestamp=at + 1),
    ]


def _recent_session(at: float) -> list[Event]:
    return [
        ActionExecuted("action_session_start", timestamp=at),
        SessionStarted(timestamp=at),
        SlotSet("phone", NEW_PHONE, timestamp=at),
        ActionExecuted("action_listen", timestamp=at),
        UserUttered("社保卡挂失怎么办", {"intent": {"name": "ask_social_security"}}, "rest", timestamp=at),
        BotUttered("可在任一社保经办网点挂失。", timestamp=at + 1),
    ]


def _loyal(w: World, cid: str, base: float = NOW) -> None:
    """Three sessions: 300 days ago the citizen filled the ID-card form (submitted; a closed handoff, a handled
    ticket, feedback and the outbox row from then), 200 days ago a short one, five days ago the latest."""
    w.conversation(cid, base - 300 * DAY, submitted=True)
    w.handoff_episode(cid, base - 300 * DAY)
    w.ticket(cid, base - 299 * DAY)
    w.feedback(cid, base - 299 * DAY, comment=f"{NAME}：很满意")
    w.outbox(cid, base - 300 * DAY, "submitted")
    w.tracker.append(cid, _middle_session(base - 200 * DAY))
    w.tracker.append(cid, _recent_session(base - 5 * DAY))
    w.handoff_episode(cid, base - 5 * DAY)
    w.feedback(cid, base - 4 * DAY)


def _everything(engine: Engine) -> str:
    """Every row of every table, as text."""
    md = MetaData()
    md.reflect(engine)
    with engine.connect() as conn:
        rows = {name: [dict(r) for r in conn.execute(select(t)).mappings()] for name, t in md.tables.items()}
    return json.dumps(rows, ensure_ascii=False, default=str)


def _seqs(engine: Engine, cid: str) -> list[int]:
    t = EventRow.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(t.c.seq).where(t.c.conversation_id == cid).order_by(t.c.seq)).scalars())


def _dicts(events: Any) -> list[dict[str, Any]]:
    return [event_to_dict(e) for e in events]


def test_the_sessions_that_ended_before_the_cutoff_go(engine: Engine, db_url: str,
                                                     another: Callable[[], Engine]) -> None:
    w = World.open(db_url, engine)
    _loyal(w, "loyal")
    assert all(s in _everything(engine) for s in SECRETS)
    # from the boundary of the session of 200 days ago (running at the cutoff) on
    later = _dicts(w.tracker.load("loyal"))[OLD_EVENTS:]

    report = _retention(w).run(actor="tester", source="pytest")

    dump = _everything(engine)
    assert not any(s in dump for s in SECRETS)
    assert "loyal" in dump
    fresh = SQLTrackerStore(another())  # another process, reading from the start
    assert _dicts(fresh.load("loyal")) == later and later[0]["event"] == "session_started"
    assert _seqs(engine, "loyal") == list(range(FIRST_KEPT, FIRST_KEPT + len(later)))
    assert w.rows_about("loyal") == {"dialogue_events": len(later), "handoff_sessions": 1, "handoff_tickets": 0,
                                     "citizen_feedback": 1, "form_outbox": 0}
    assert report.conversations == 0 and report.kept == {}
    assert (report.trimmed_conversations, report.trimmed_events) == (1, OLD_EVENTS)
    assert report.trimmed == {"dialogue_events": OLD_EVENTS, "handoff_sessions": 1, "handoff_tickets": 1,
                              "citizen_feedback": 1, "form_outbox": 1}
    [entry] = w.audit("retention.run")
    assert entry["detail"]["trimmed_conversations"] == 1 and entry["detail"]["trimmed"] == report.trimmed
    assert not any(s in json.dumps(entry, ensure_ascii=False) for s in SECRETS)

    # a second run finds nothing more: the boundary it would cut at is now the first row
    again = _retention(w).run()
    assert again.trimmed_conversations == 0 and again.trimmed == {} and _dicts(fresh.load("loyal")) == later


def test_kept_and_single_session_conversations_are_not_trimmed(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    for cid in ("queued", "ticketed", "retrying", "long"):
        w.conversation(cid, days_ago(300))
    for cid in ("queued", "ticketed", "retrying"):  # a second session that ended long ago: something to trim
        w.conversation(cid, days_ago(250))
    # still in use, and kept whole: waiting for staff since long ago, an unanswered ticket, a form to retry
    w.handoff_episode("queued", days_ago(250), close=False)
    w.conversation("queued", days_ago(5))
    w.ticket("ticketed", days_ago(250), handled=False)
    w.conversation("ticketed", days_ago(5))
    w.conversation("retrying", days_ago(5), pending=True)
    # one session, started long ago and still running: the citizen wrote two days ago
    w.tracker.append("long", [UserUttered("还在吗", {"intent": {"name": "greet"}}, "rest", timestamp=days_ago(2))])
    before = {cid: (w.rows_about(cid), _seqs(engine, cid)) for cid in ("queued", "ticketed", "retrying", "long")}

    report = _retention(w).run()

    assert {cid: (w.rows_about(cid), _seqs(engine, cid)) for cid in before} == before
    assert report.trimmed_conversations == 0 and report.trimmed == {}
    assert report.kept == {KEPT_OPEN_HANDOFF: 1, KEPT_OPEN_TICKET: 1, KEPT_PENDING_FORM: 1}


def test_dry_run_counts_the_trim_and_deletes_nothing(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    _loyal(w, "loyal")
    w.conversation("old", days_ago(300))  # goes whole: not counted as trimmed too
    w.conversation("old", days_ago(250))
    w.conversation("queued", days_ago(300))
    w.conversation("queued", days_ago(260))
    w.handoff_episode("queued", days_ago(250), close=False)
    w.conversation("queued", days_ago(5))
    snapshot = _everything(engine)

    dry = _retention(w).run(dry_run=True)

    assert _everything(engine) == snapshot
    assert w.audit("retention.run") == []
    real = _retention(w).run()
    assert (dry.trimmed_conversations, dry.trimmed, dry.kept, dry.conversations) == (
        real.trimmed_conversations, real.trimmed, real.kept, real.conversations) == (
        1, {"dialogue_events": OLD_EVENTS, "handoff_sessions": 1, "handoff_tickets": 1, "citizen_feedback": 1,
            "form_outbox": 1}, {KEPT_OPEN_HANDOFF: 1}, 1)
    assert dry.to_json()["trimmed_events"] == OLD_EVENTS


def test_the_command_line_reports_the_trim(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from assistant.cli import app

    (tmp_path / "config.yml").write_text("database:\n  url: sqlite:///var/cli.db\n", encoding="utf-8")
    (tmp_path / "var").mkdir()
    url = f"sqlite:///{tmp_path / 'var' / 'cli.db'}"
    eng = make_engine(url)
    w = World.open(url, eng)
    _loyal(w, "loyal", base=time.time())
    runner = CliRunner()

    dry = runner.invoke(app, ["retention", "run", "--project", str(tmp_path), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    assert (report["trimmed_conversations"], report["trimmed_events"]) == (1, OLD_EVENTS)
    assert report["trimmed"]["citizen_feedback"] == 1 and w.count("dialogue_events", "loyal") > OLD_EVENTS + 8

    real = runner.invoke(app, ["retention", "run", "--project", str(tmp_path)])
    assert real.exit_code == 0, real.output
    assert f"1 个仍在使用的会话中的过期会话段 / conversations still in use trimmed of their old sessions " \
           f"({OLD_EVENTS} events)" in real.stdout
    assert f"dialogue_events\t{OLD_EVENTS}" in real.stdout and ID_NUMBER not in _everything(eng)
    [entry] = w.audit("retention.run")
    assert entry["detail"]["trimmed_events"] == OLD_EVENTS
    eng.dispose()


# ---- the engine after a trim -----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["server", "cli"])
def test_the_agent_goes_on_in_the_trimmed_conversation(project: Path, interpreter: Any, engine: Engine,
                                                       db_url: str, another: Callable[[], Engine],
                                                       how: str) -> None:
    """The agent writes the latest session at the real time (its events carry the wall clock), so the history
    is written relative to now. ``agent`` is the process retention runs in (or, for the CLI, one that only
    learns of it on its next read); ``replica`` is another server process that had the conversation cached."""
    from assistant.agent import UserMessage, build_agent

    now = time.time()
    store = SQLTrackerStore(engine)
    w = World.open(db_url, engine)
    w.conversation("c1", now - 300 * DAY, submitted=True)
    store.append("c1", _middle_session(now - 200 * DAY))
    agent = build_agent(project, interpreter, store=store)
    replica = build_agent(project, interpreter, store=SQLTrackerStore(another()))
    asyncio.run(agent.handle(UserMessage("c1", "你好")))  # a new session: the phone of 200 days ago carried over
    cached = asyncio.run(replica.tracker("c1"))
    assert cached.get_slot("phone") == NEW_PHONE and ID_NUMBER in json.dumps(_dicts(cached.events), ensure_ascii=False)
    last = _seqs(engine, "c1")[-1]

    retention = Retention(engine if how == "server" else another(), PrivacyConfig(), clock=lambda: now)
    if how == "server":
        report = asyncio.run(retention.run_async(lock=agent.locks.lock, forget=agent.forget))
    else:
        report = retention.run()
    assert report.trimmed_events == OLD_EVENTS

    stored = _dicts(store.load("c1"))
    assert stored[0]["event"] == "session_started" and _seqs(engine, "c1")[0] == FIRST_KEPT
    assert ID_NUMBER not in _everything(engine)
    for process in (agent, replica):
        tracker = asyncio.run(process.tracker("c1"))
        assert _dicts(tracker.events) == stored
        assert ID_NUMBER not in json.dumps(_dicts(tracker.events), ensure_ascii=False)
        assert tracker.get_slot("phone") == NEW_PHONE  # set again in the session that remains

    replies = asyncio.run(agent.handle(UserMessage("c1", '/inform{"phone": "13700002222"}')))
    assert replies and any(r.text for r in replies)
    assert asyncio.run(agent.tracker("c1")).get_slot("phone") == "13700002222"
    replies = asyncio.run(replica.handle(UserMessage("c1", "你好")))
    assert replies and any(r.text for r in replies)
    seqs = _seqs(engine, "c1")
    assert seqs == list(range(FIRST_KEPT, seqs[-1] + 1)) and seqs[-1] > last  # numbered on, after the old tail
    assert _dicts(asyncio.run(replica.tracker("c1")).events) == _dicts(store.load("c1"))


def test_the_store_tells_a_caching_reader_its_history_was_trimmed(engine: Engine, db_url: str,
                                                                 another: Callable[[], Engine]) -> None:
    from sqlalchemy import delete

    from assistant.store import ConversationReset

    store = SQLTrackerStore(engine)
    store.append("c", [SessionStarted(), UserUttered(f"身份证{ID_NUMBER}"), SessionStarted(), UserUttered("你好")])
    assert store.load_after("c", 0)[1] == 4
    t = EventRow.__table__
    with another().begin() as conn:  # retention in another process: the first session goes
        conn.execute(delete(t).where(t.c.conversation_id == "c", t.c.seq < 3))
    store.append("c", [BotUttered("您好")])

    assert [type(e) for e in store.load("c")] == [SessionStarted, UserUttered, BotUttered]  # one-off read
    with pytest.raises(ConversationReset):  # the row at 4 is still there, but what came before it is not
        store.load_after("c", 4)
    events, seq = store.load_after("c", 0)
    assert (len(events), seq) == (3, 5)
    assert store.load_after("c", 5) == ((), 5)  # and from the reloaded history on, reads are incremental again
    assert store.append("c", [UserUttered("谢谢")]) == 6
