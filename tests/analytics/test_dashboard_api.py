"""``GET /api/dashboard`` over conversations held with the real agent through the web chat and REST channels.

The figures are checked three ways: facts of the script (the knowledge question was answered, the request for a
person counted as a handoff), equality with the definitions re-implemented in Python over the loaded trackers
(``analytics_reference``), and equality of the same events copied into PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from analytics_reference import STAFF, bearer, reference, webchat

from assistant.analytics import Analytics, shanghai_day
from assistant.feedback import FeedbackStore
from assistant.store import SQLTrackerStore

KEYS = {"days", "answer_rate", "handoff_rate", "top_intents", "top_unanswered", "satisfaction"}


def _sid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def test_dashboard_needs_an_editor_or_an_admin(client: Any, runtime: Any) -> None:
    r = client.get("/api/dashboard")
    assert r.status_code == 401
    assert {"code", "message_zh", "message_en"} <= r.json().keys()
    r = client.get("/api/dashboard", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = client.get("/api/dashboard", headers=bearer(runtime, STAFF["agent"]))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    for role in ("admin", "editor"):
        if role not in STAFF:
            continue  # the accounts do not know the editor role yet
        r = client.get("/api/dashboard", params={"days": 7}, headers=bearer(runtime, STAFF[role]))
        assert r.status_code == 200, (role, r.text)
        body = r.json()
        assert set(body) == KEYS and len(body["days"]) == 7
        assert body["days"][-1]["date"] == shanghai_day(time.time())


@pytest.mark.parametrize("days", ["0", "91", "abc", "-1"])
def test_bad_window_is_a_bilingual_422(client: Any, runtime: Any, days: str) -> None:
    r = client.get("/api/dashboard", params={"days": days}, headers=bearer(runtime, STAFF["admin"]))
    assert r.status_code == 422
    assert {"code", "message_zh", "message_en"} <= r.json().keys()


def test_figures_of_real_conversations(client: Any, runtime: Any, pg_url: str) -> None:
    admin = bearer(runtime, STAFF["admin"])
    before = client.get("/api/dashboard", params={"days": 2}, headers=admin).json()
    today_before = before["days"][-1]

    # a policy question the knowledge base answers with a citation
    kb = _sid("kb")
    answer = webchat(client, kb, "身份证过期了怎么换领？", 1)
    assert any(m.get("citations") for m in answer), answer
    # a question nobody can answer, then a request for a person
    out = _sid("out")
    webchat(client, out, "火星移民补贴怎么申请", 1)
    queued = webchat(client, out, "转人工", 2)
    assert any("排队" in (m.get("text") or "") or "转接" in (m.get("text") or "") for m in queued), queued
    # a form started and one field answered
    form = _sid("form")
    webchat(client, form, "帮我预约换身份证", 1)
    webchat(client, form, "张三", 2)
    # a Rasa REST client: every channel's citizens count
    r = client.post("/webhooks/rest/webhook", json={"sender": _sid("rest"), "message": "社保卡丢了怎么办"})
    assert r.status_code == 200

    after = client.get("/api/dashboard", params={"days": 2}, headers=admin).json()
    today = after["days"][-1]
    assert today["questions"] == today_before["questions"] + 6
    assert today["answered"] >= today_before["answered"] + 3  # the cited answer, the queue, the form's question
    assert today["handoffs"] == today_before["handoffs"] + 1
    assert after["handoff_rate"] > 0
    intents = {i["intent"]: i["count"] for i in after["top_intents"]}
    assert intents, after

    # the SQL says what the definitions say, event by event
    store = runtime.agent.store
    now = time.time()
    want = reference(store, 2, now)
    got = runtime.analytics.compute(2, now)
    assert got["days"] == want["days"]
    assert (got["answer_rate"], got["handoff_rate"]) == (want["answer_rate"], want["handoff_rate"])
    top = sorted(want["intents"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(i["intent"], i["count"]) for i in got["top_intents"]] == top

    # the same events in PostgreSQL give the same figures
    pg = SQLTrackerStore(pg_url)
    for cid in store.conversations():
        pg.append(cid, list(store.load(cid)))
    on_pg = Analytics(pg.engine, FeedbackStore(pg.engine)).compute(2, now)
    assert {k: on_pg[k] for k in ("days", "answer_rate", "handoff_rate", "top_intents")} == {
        k: got[k] for k in ("days", "answer_rate", "handoff_rate", "top_intents")}
    pg.engine.dispose()
