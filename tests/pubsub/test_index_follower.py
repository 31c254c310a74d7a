"""Index reloads across replicas: knowledge services sharing one database (and, for two of them, one index
directory) follow each other's publishes and rollbacks through ``kb.live`` on real Redis. Polling is off here
(``poll_s=0``) so only the message can have loaded a version; a replica whose disk lacks the version says so."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "knowledge"))

import kb_fixture_files as kb  # noqa: E402

from assistant.config import RedisConfig  # noqa: E402
from assistant.redis_client import key, redis_client  # noqa: E402
from connectors.index_follower import IndexFollower  # noqa: E402
from connectors.redis_sync import sync_redis_client  # noqa: E402
from knowledge.service import KnowledgeService  # noqa: E402

pytestmark = pytest.mark.slow
QUESTION = "社保卡在哪里办？"


def follower(service: KnowledgeService, settings: RedisConfig) -> IndexFollower:
    f = IndexFollower(service, lambda: redis_client(settings), sync_redis_client(settings), key(settings, "kb"),
                      poll_s=0)
    service.live_listeners.append(f.announce)
    return f


async def until(check: object, timeout: float = 30.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not check():  # type: ignore[operator]
        if loop.time() - started > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)
    return loop.time() - started


def test_publish_and_rollback_on_one_replica_are_followed_by_the_others(
    redis_settings: RedisConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = kb.make_service(tmp_path)
    a.import_paths(kb.write_demo_files(tmp_path / "src"), "alice")
    quiet = kb.TEST_CONFIG.model_copy(update={"reload_check_seconds": 0})  # searches never look at LIVE themselves
    b = KnowledgeService(a.session_factory, kb.test_embedder(), quiet, tmp_path / "index")
    # a replica whose index directory is not the shared one
    c = KnowledgeService(a.session_factory, kb.test_embedder(), quiet, tmp_path / "not-shared")
    followers = [follower(s, redis_settings) for s in (a, b, c)]

    async def body() -> None:
        for f in followers:
            await f.start()
        for f in followers:
            await asyncio.wait_for(f.listening.wait(), 5)
        first = await asyncio.to_thread(a.publish, "alice")
        took = await until(lambda: b.live_version == first.id)
        assert b.search(QUESTION, record=False).answered
        second = await asyncio.to_thread(a.publish, "bob")
        took_second = await until(lambda: b.live_version == second.id)
        await asyncio.to_thread(a.rollback, first.id)
        await until(lambda: b.live_version == first.id)
        await until(lambda: any("not on this replica's disk" in r.getMessage() for r in caplog.records))
        assert c.live_version is None  # keeps serving what it has (nothing), and said why
        await until(lambda: followers[1].reloads == 3)  # counted once the worker thread has returned
        print(f"\npublish followed after {took * 1000:.0f} ms (first load of an index), then {took_second * 1000:.0f} ms")
        for f in followers:
            await f.aclose()

    with caplog.at_level(logging.INFO, logger="connectors.index_follower"):
        asyncio.run(body())
    warning = next(r.getMessage() for r in caplog.records if "not on this replica's disk" in r.getMessage())
    assert "must be shared by every replica" in warning and str(tmp_path / "not-shared") in warning


def test_a_missed_message_is_made_up_by_the_poll(redis_settings: RedisConfig, tmp_path: Path) -> None:
    a = kb.make_service(tmp_path)
    a.import_paths(kb.write_demo_files(tmp_path / "src"), "alice")
    quiet = kb.TEST_CONFIG.model_copy(update={"reload_check_seconds": 0})
    b = KnowledgeService(a.session_factory, kb.test_embedder(), quiet, tmp_path / "index")
    polling = IndexFollower(b, lambda: redis_client(redis_settings), sync_redis_client(redis_settings),
                            key(redis_settings, "kb"), poll_s=0.5)

    async def body() -> None:
        info = await asyncio.to_thread(a.publish, "alice")  # a has no follower: nothing is announced
        await polling.start()
        # the first load of an index builds the tokenizer (seconds on a busy machine)
        await until(lambda: b.live_version == info.id, timeout=30)
        await polling.aclose()

    asyncio.run(body())
