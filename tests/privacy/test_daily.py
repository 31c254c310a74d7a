"""The daily run: scheduled at privacy.daily_at (Asia/Shanghai) with an injected clock and sleep, claimed once per
day across replicas through the database, and started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.testclient import TestClient
from privacy_helpers import World, days_ago
from sqlalchemy.engine import Engine

from assistant.privacy import PrivacyConfig
from assistant.retention import DailyRetention, Retention, RetentionReport, schedule_daily
from assistant.store import InMemoryLockStore, make_engine

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2027, 1, day, hour, minute, tzinfo=SH).timestamp()


class Clock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if len(self.sleeps) > 6:
            raise asyncio.CancelledError  # enough days watched


def test_schedule_runs_once_a_day_at_the_configured_time(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    clock = Clock(at(15, 1, 0))  # started at 01:00, before today's 03:30
    runs: list[float] = []

    async def run() -> RetentionReport:
        runs.append(clock.now)
        return RetentionReport(180, 0.0, False)

    daily = DailyRetention(engine, PrivacyConfig(), run, clock=clock, sleep=clock.sleep, startup_delay_s=60)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(daily.forever())
    assert runs[:3] == [at(15, 3, 30), at(16, 3, 30), at(17, 3, 30)]
    assert clock.sleeps[0] == 60 and clock.sleeps[1] == at(15, 3, 30) - at(15, 1, 1)
    assert clock.sleeps[2] == 86_400  # from one run to the next day's
    last = daily.last_run()
    assert last is not None and last["day"] == datetime.fromtimestamp(runs[-1], SH).date().isoformat()
    assert last["finished_at"] is not None and last["report"]["days"] == 180


def test_a_server_started_after_the_time_catches_up_once(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    clock = Clock(at(15, 9, 0))
    runs: list[float] = []

    async def run() -> RetentionReport:
        runs.append(clock.now)
        return RetentionReport(180, 0.0, False)

    daily = DailyRetention(engine, PrivacyConfig(daily_at="02:00"), run, clock=clock, sleep=clock.sleep,
                           startup_delay_s=300)
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(daily.forever())
    assert runs[0] == at(15, 9, 5) and runs[1] == at(16, 2, 0)
    # a restart later on the day of the latest run does not run it again
    done = len(runs)
    again = DailyRetention(engine, PrivacyConfig(daily_at="02:00"), run, clock=lambda: runs[-1] + 8 * 3600)
    assert asyncio.run(again.tick()) is None and len(runs) == done


def test_replicas_claim_a_day_once(engine: Engine, db_url: str) -> None:
    """Eight replicas (threads with their own engines) try to claim the same day at once: exactly one wins, on
    SQLite and PostgreSQL; the next day is claimable again."""

    async def never() -> RetentionReport:
        raise AssertionError

    replicas = [DailyRetention(make_engine(db_url), PrivacyConfig(), never) for _ in range(8)]
    barrier = threading.Barrier(len(replicas))
    wins: list[bool] = []

    def claim(d: DailyRetention) -> None:
        barrier.wait()
        wins.append(d.claim(at(15, 4)))

    threads = [threading.Thread(target=claim, args=(d,)) for d in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]
    assert not replicas[0].claim(at(15, 23))
    assert replicas[3].claim(at(16, 3, 31)) and not replicas[4].claim(at(16, 3, 32))


def test_server_run_deletes_under_the_lock_and_drops_cached_trackers(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    w.conversation("old", days_ago(200))
    w.conversation("new", days_ago(1))
    from privacy_helpers import NOW

    locks = InMemoryLockStore()
    locked: list[str] = []
    forgotten: list[str] = []

    @contextlib.asynccontextmanager
    async def lock(cid: str) -> Any:
        async with locks.lock(cid):
            locked.append(cid)
            yield

    retention = Retention(engine, PrivacyConfig(), audit=w.accounts.audit, clock=lambda: NOW)
    report = asyncio.run(retention.run_async(lock=lock, forget=forgotten.append))
    assert locked == ["old"] and forgotten == ["old"]
    assert report.conversations == 1 and w.count("dialogue_events", "old") == 0
    assert w.count("dialogue_events", "new") == 9
    [entry] = w.audit("retention.run")
    assert entry["actor"] == "system" and entry["detail"]["deleted"]["dialogue_events"] == 9


def test_the_app_lifespan_starts_and_stops_the_daily_task(sqlite_url: str) -> None:
    app = FastAPI()
    agent = SimpleNamespace(locks=InMemoryLockStore(), forget=lambda cid: None)
    runtime = SimpleNamespace(config=SimpleNamespace(privacy=PrivacyConfig()), database_url=sqlite_url,
                              agent=agent, accounts=None)
    started: list[str] = []

    async def sleep(seconds: float) -> None:
        started.append(asyncio.current_task().get_name())  # type: ignore[union-attr]
        await asyncio.Event().wait()  # until cancelled by the lifespan's end

    assert schedule_daily(app, runtime, sleep=sleep) is not None
    with TestClient(app):
        for _ in range(100):
            if started:
                break
            threading.Event().wait(0.01)
    assert started == ["daily-retention"]
    off = SimpleNamespace(**{**vars(runtime), "config": SimpleNamespace(privacy=PrivacyConfig(daily_run=False))})
    assert schedule_daily(FastAPI(), off) is None
