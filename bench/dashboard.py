"""Dashboard cost: time per ``GET /api/dashboard`` computation over a large ``dialogue_events`` table.

    .venv/bin/python bench/dashboard.py [--events 100000] [--days-of-data 30] [--url sqlite:///...|postgresql+psycopg://...]
                                        [--repeat 5] [--naive]

Writes ``--events`` events in the engine's own shapes (about 8 per question: the citizen's message with its
intent, actions, a bot answer that is a cited knowledge answer, an abstention, a fallback, a form question or a
handoff) spread over ``--days-of-data`` days and conversations of 1–6 questions, then times
``Analytics.compute`` (the cache bypassed) for windows of 1, 14 and 90 days — the first request, which computes
and keeps the completed days, and the following ones, which read them and compute today only — and prints the
figures it found.
``--naive`` also times the obvious alternative of loading every conversation's tracker in Python.
Without ``--url`` a fresh SQLite file in a temporary folder is used (WAL, as the server runs it).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from sqlalchemy import func, insert, select, text  # noqa: E402

from assistant.analytics import Analytics  # noqa: E402
from assistant.events import ActionExecuted, BotUttered, CustomEvent, Event, UserUttered, event_to_dict  # noqa: E402
from assistant.feedback import FeedbackRow, FeedbackStore  # noqa: E402
from assistant.store import EventRow, SQLTrackerStore  # noqa: E402

INTENTS = ["ask_idcard", "ask_materials", "ask_fee", "book_idcard", "greet", "thank", "nlu_fallback",
           "out_of_scope", "request_human", "ask_social_security", "ask_housing_fund", "inform"]
CITED = {"citations": [{"title": "居民身份证换领", "section": "所需材料", "version": 3}]}


def turn(rng: random.Random, ts: float, n: int) -> list[Event]:
    intent = rng.choice(INTENTS)
    out: list[Event] = [UserUttered(f"问题 {n}", {"intent": {"name": intent, "confidence": 0.8}, "entities": []},
                                    "webchat", f"m{n}", {}, timestamp=ts)]
    kind = rng.random()
    if intent == "request_human":
        out += [ActionExecuted("action_handoff", timestamp=ts + 1),
                CustomEvent("handoff", {"transition": "queued", "from": "bot", "to": "waiting"}, timestamp=ts + 1),
                BotUttered("正在为您转接", {}, {"utter_action": "utter_handoff_queued"}, timestamp=ts + 1)]
    elif kind < 0.55:
        out += [ActionExecuted("action_knowledge_answer", timestamp=ts + 1),
                BotUttered("答案……" * 20, CITED, {"utter_action": "action_knowledge_answer"}, timestamp=ts + 1)]
    elif kind < 0.7:
        out += [ActionExecuted("action_knowledge_answer", timestamp=ts + 1),
                BotUttered("抱歉，这个问题我还不知道", {"buttons": [{"title": "a", "payload": "a"}]},
                           {"utter_action": "action_knowledge_answer", "abstained": True}, timestamp=ts + 1)]
    elif kind < 0.8:
        out += [ActionExecuted("action_default_fallback", timestamp=ts + 1),
                BotUttered("抱歉，我没能理解", {}, {"utter_action": "utter_default"}, timestamp=ts + 1)]
    else:
        out += [ActionExecuted("idcard_form", timestamp=ts + 1),
                BotUttered("请问您的姓名？", {}, {"utter_action": "utter_ask_applicant_name"}, timestamp=ts + 1)]
    out.append(ActionExecuted("action_listen", timestamp=ts + 2))
    return out


def fill(store: SQLTrackerStore, events: int, days: int, seed: int = 7) -> tuple[int, int]:
    rng = random.Random(seed)
    now = time.time()
    written = conversations = n = 0
    table = EventRow.__table__
    batch: list[dict[str, Any]] = []
    while written < events:
        conversations += 1
        cid = f"bench-{conversations:07d}"
        ts = now - rng.random() * days * 86400
        seq = 0
        for _ in range(rng.randint(1, 6)):
            n += 1
            for e in turn(rng, ts, n):
                seq += 1
                p = event_to_dict(e)
                batch.append({"conversation_id": cid, "seq": seq, "type": p["event"], "timestamp": p["timestamp"],
                              "payload": p})
            ts += rng.uniform(5, 120)
        written += seq
        if len(batch) >= 5000:
            with store.engine.begin() as conn:
                conn.execute(insert(table), batch)
            batch = []
    if batch:
        with store.engine.begin() as conn:
            conn.execute(insert(table), batch)
    return written, conversations


def naive(store: SQLTrackerStore) -> float:
    """Every tracker loaded and walked in Python: what the dashboard must not do per request."""
    t = time.perf_counter()
    answered = 0
    for cid in store.conversations():
        for e in store.load(cid):
            answered += isinstance(e, BotUttered) and not e.metadata.get("abstained")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--days-of-data", type=int, default=30)
    ap.add_argument("--url", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--naive", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    store = SQLTrackerStore(url)
    with store.engine.connect() as conn:
        existing = conn.scalar(select(func.count()).select_from(EventRow.__table__))
    feedback = FeedbackStore(store.engine)
    if existing:
        sys.exit(f"{url} already holds {existing} events: give an empty database")
    t = time.perf_counter()
    written, conversations = fill(store, args.events, args.days_of_data)
    with store.engine.begin() as conn:
        rng = random.Random(3)
        from datetime import UTC, datetime

        conn.execute(insert(FeedbackRow), [
            {"conversation_id": f"bench-{rng.randint(1, conversations):07d}", "score": rng.randint(1, 5),
             "comment": None, "channel": "webchat",
             "at": datetime.fromtimestamp(time.time() - rng.random() * args.days_of_data * 86400, UTC)}
            for _ in range(max(1, conversations // 10))])
    if store.engine.dialect.name == "postgresql":
        # what autovacuum does to a table that grew: the planner needs row counts
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    print(f"database: {store.engine.dialect.name}; wrote {written} events in {conversations} conversations over "
          f"{args.days_of_data} days in {time.perf_counter() - t:.1f} s")
    analytics = Analytics(store.engine, feedback, None, cache_seconds=0)
    for days in (1, 14, 90):
        t = time.perf_counter()
        out = analytics.compute(days, time.time())
        first = time.perf_counter() - t
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            out = analytics.compute(days, time.time())
            times.append(time.perf_counter() - t)
        q = sum(d["questions"] for d in out["days"])
        print(f"  window {days:>2} d: first request {first * 1000:7.1f} ms (completed days computed and kept), then "
              f"median {statistics.median(times) * 1000:6.1f} ms, max {max(times) * 1000:6.1f} ms ({args.repeat} runs)"
              f" | questions {q}, answer rate {out['answer_rate']:.3f}, handoff rate {out['handoff_rate']:.3f}, "
              f"satisfaction {out['satisfaction']['average']} (n={out['satisfaction']['count']})")
    analytics.forget_days()
    t = time.perf_counter()
    analytics.compute(90, time.time())
    print(f"  everything from the events (no kept days), 90 d: {(time.perf_counter() - t) * 1000:.1f} ms")
    analytics.cache_seconds = 30
    analytics.dashboard(14)
    t = time.perf_counter()
    analytics.dashboard(14)
    print(f"  cached request: {(time.perf_counter() - t) * 1e6:.0f} µs")
    if args.naive:
        print(f"  naive (every tracker loaded in Python): {naive(store):.2f} s")
    store.engine.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
