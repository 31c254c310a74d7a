"""PostgreSQL unreachable (its TCP proxy cut or black-holed): requests fail fast with 503 + Retry-After and a
bilingual body, /readyz names the database, nothing is half-written, and the server recovers by itself."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from fault_rig import FaultRig

# the limit the issue sets ("fail fast"): a refused connection is immediate, a black hole costs the connect timeout
FAST_S = 2.0


def _assert_unavailable(r: httpx.Response, dependency_zh: str) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    body = r.json()
    assert body["code"] == "service_unavailable"
    assert dependency_zh in body["message_zh"] and body["message_en"]


def test_database_cut_gives_fast_503s_then_the_conversation_continues_once(rig: FaultRig, fresh_session: str) -> None:
    s = fresh_session
    assert rig.post(s, "m1", "你好").status_code == 200
    rig.pg.cut()
    try:
        started = time.monotonic()
        r = rig.post(s, "m2", "身份证过期了怎么办")
        elapsed = time.monotonic() - started
        _assert_unavailable(r, "数据库")
        assert elapsed < FAST_S, f"503 after {elapsed:.2f} s"
        ready = httpx.get(f"{rig.replica.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
        # the Rasa REST channel (no message ids) fails the same way
        rest = httpx.post(f"{rig.replica.url}/webhooks/rest/webhook", json={"sender": s + "-rest", "message": "你好"},
                          timeout=10)
        _assert_unavailable(rest, "数据库")
        # twenty citizens at once: every one answered quickly, none left hanging
        with ThreadPoolExecutor(20) as pool:
            started = time.monotonic()
            many = list(pool.map(lambda i: rig.post(f"{s}-{i}", "m1", "你好"), range(20)))
            burst = time.monotonic() - started
        assert {r.status_code for r in many} == {503}
        assert burst < 2 * FAST_S, f"20 concurrent 503s took {burst:.2f} s"
    finally:
        rig.pg.restore()
    # no restart: the first request after the database returns succeeds (stale pooled connections are pinged)
    r = rig.post(s, "m2", "身份证过期了怎么办")
    assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is False
    assert httpx.get(f"{rig.replica.url}/readyz", timeout=10).status_code == 200
    assert rig.post(s, "m3", "谢谢").status_code == 200
    # the retried message is answered from what was stored, not taken again
    assert rig.post(s, "m2", "身份证过期了怎么办").json()["duplicate"] is True
    stored = [m.get("message_id") for m in rig.user_messages(s)]
    assert stored == ["m1", "m2", "m3"], stored
    # the refused burst wrote nothing
    assert all(not rig.user_messages(f"{s}-{i}") for i in range(20))


def test_database_black_hole_is_bounded_by_the_connect_timeout(rig: FaultRig, fresh_session: str) -> None:
    """Packets dropped (no refusal): only timeouts can help; the request still ends in a 503 within seconds."""
    s = fresh_session
    assert rig.post(s, "m1", "你好").status_code == 200
    rig.pg.blackhole()
    try:
        started = time.monotonic()
        r = rig.post(s, "m2", "你好")
        elapsed = time.monotonic() - started
        _assert_unavailable(r, "数据库")
        # libpq connect_timeout is 3 s; a pre-ping and one reconnect at most
        assert elapsed < 8, f"503 after {elapsed:.2f} s"
    finally:
        rig.pg.restore()
    assert rig.post(s, "m2", "你好").status_code == 200
    assert [m.get("message_id") for m in rig.user_messages(s)] == ["m1", "m2"]
