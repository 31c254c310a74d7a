"""Redis unreachable (its TCP proxy cut): conversation locks cannot be taken, so messages fail fast with 503 +
Retry-After naming Redis, /readyz says so, nothing is stored, and service resumes by itself when Redis returns."""

from __future__ import annotations

import time

import httpx
import pytest
from fault_rig import FaultRig

# redis-py retries a refused connection a few times with backoff before giving up
FAST_S = 6.0


def test_redis_cut_gives_503_then_the_conversation_continues_once(rig: FaultRig, fresh_session: str) -> None:
    if rig.redis is None:
        pytest.skip("Redis not available: the replica runs without it")
    s = fresh_session
    assert rig.post(s, "m1", "你好").status_code == 200
    rig.redis.cut()
    try:
        started = time.monotonic()
        r = rig.post(s, "m2", "身份证过期了怎么办")
        elapsed = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) > 0
        body = r.json()
        assert body["code"] == "service_unavailable" and "Redis" in body["message_en"], body
        assert elapsed < FAST_S, f"503 after {elapsed:.2f} s"
        ready = httpx.get(f"{rig.replica.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] is False, ready.text
        print(f"redis cut: 503 after {elapsed:.2f} s")
    finally:
        rig.redis.restore()
    # nothing of the refused message was stored
    assert [m.get("message_id") for m in rig.user_messages(s)] == ["m1"]
    deadline = time.monotonic() + 15
    while True:
        r = rig.post(s, "m2", "身份证过期了怎么办")
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    assert httpx.get(f"{rig.replica.url}/readyz", timeout=10).status_code == 200
    assert rig.post(s, "m3", "谢谢").status_code == 200
    assert [m.get("message_id") for m in rig.user_messages(s)] == ["m1", "m2", "m3"]
