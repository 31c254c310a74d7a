"""The dashboard's definitions written again in plain Python over loaded trackers, to check the SQL against on
real conversations (slow at scale, which is why the product does not do it this way), and small HTTP helpers."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from assistant.accounts import ROLES
from assistant.analytics import HANDOFF_ENTRIES, NON_ANSWERS
from assistant.events import BotUttered, CustomEvent, UserUttered

SH = ZoneInfo("Asia/Shanghai")
PASSWORD = "correct-horse-battery"
# role -> user name; "editor" only once the accounts know the role (issue 7 adds it)
STAFF = {"admin": "dash-admin", "agent": "dash-agent", **({"editor": "dash-editor"} if "editor" in ROLES else {})}


def is_answer(e: BotUttered) -> bool:
    action = e.metadata.get("utter_action") or ""
    if e.metadata.get("abstained") or action in NON_ANSWERS:
        return False
    return not (action == "action_knowledge_answer" and "citations" not in e.data)


def reference(store: Any, days: int, now: float) -> dict[str, Any]:
    today = datetime.fromtimestamp(now, SH).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=SH).timestamp()
    end = start + days * 86400
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    intents: Counter[str] = Counter()
    asking, entered = set(), set()
    for cid in store.conversations():
        turns: list[list[Any]] = []  # [day, answered] per question in the window
        current: list[Any] | None = None
        entries: set[str] = set()
        for e in store.load(cid):
            inside = start <= e.timestamp < end
            if isinstance(e, UserUttered):
                current = None
                if inside:
                    current = [datetime.fromtimestamp(e.timestamp, SH).date().isoformat(), False]
                    turns.append(current)
                    asking.add(cid)
                    if e.intent_name:
                        intents[e.intent_name] += 1
            elif not inside:
                continue
            elif isinstance(e, BotUttered) and current is not None and is_answer(e):
                current[1] = True
            elif isinstance(e, CustomEvent) and e.name == "handoff" and e.data.get("transition") in HANDOFF_ENTRIES:
                entered.add(cid)
                entries.add(datetime.fromtimestamp(e.timestamp, SH).date().isoformat())
        for day, answered in turns:
            per_day[day]["questions"] += 1
            per_day[day]["answered"] += int(answered)
        for day in entries:
            per_day[day]["handoffs"] += 1
    rows = []
    for i in range(days):
        d = (first + timedelta(days=i)).isoformat()
        rows.append({"date": d, "questions": per_day[d]["questions"], "answered": per_day[d]["answered"],
                     "handoffs": per_day[d]["handoffs"]})
    q = sum(r["questions"] for r in rows)
    a = sum(r["answered"] for r in rows)
    return {
        "days": rows,
        "answer_rate": round(a / q, 4) if q else 0.0,
        "handoff_rate": round(len(asking & entered) / len(asking), 4) if asking else 0.0,
        "intents": dict(intents),
    }


def bearer(runtime: Any, username: str) -> dict[str, str]:
    user = runtime.accounts.get(username)
    token, _csrf, _expires = runtime.accounts.open_session(user)
    return {"Authorization": f"Bearer {token}"}


def webchat(client: Any, session_id: str, text: str, n: int) -> list[dict[str, Any]]:
    r = client.post("/webchat/messages", json={"session_id": session_id, "message_id": f"m{n}", "text": text},
                    headers={"X-Session-Id": session_id})
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])
