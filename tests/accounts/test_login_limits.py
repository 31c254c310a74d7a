"""Login rate limiting: per username and per client address, kept in the database (shared by replicas), through
the real login routes; the sliding window and its expiry with a controlled clock."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import FAST_HASHER, PASSWORD
from demo_project import copy_demo_project, write_config
from fastapi.testclient import TestClient

from assistant.accounts import Accounts, Auth
from assistant.config import ConfigError, load_config
from assistant.errors import ApiError
from assistant.login_limits import LoginLimits


def _user(runtime: Any, role: str = "editor") -> str:
    name = "rl" + uuid.uuid4().hex[:8]
    runtime.accounts.create_user(name, PASSWORD, role)
    return name


def _login(client: TestClient, username: str, password: str, where: str = "/api/auth/login") -> Any:
    return client.post(where, json={"username": username, "password": password})


def test_five_failures_lock_the_username_with_retry_after(client: TestClient, runtime: Any, address: str) -> None:
    name = _user(runtime, "admin")
    for _ in range(5):
        assert _login(client, name, "wrong password").status_code == 401
    r = _login(client, name, PASSWORD)  # even the right password: the account is locked for now
    assert r.status_code == 429
    body = r.json()
    assert body["code"] == "login_locked" and "分钟后再试" in body["message_zh"] and "try again" in body["message_en"]
    retry = int(r.headers["Retry-After"])
    assert 800 <= retry <= 900
    # the lock is the username's wherever it logs in (the console too), not the address's
    assert _login(client, name, PASSWORD, "/console/api/login").status_code == 429
    # and for any other code that checks passwords through Accounts.authenticate
    assert runtime.accounts.authenticate(name, PASSWORD) is None
    other = _user(runtime)
    assert _login(client, other, PASSWORD).status_code == 200
    locked = [e for e in runtime.accounts.audit_log.search(actor=name, action="login.failure").entries
              if e["detail"].get("reason") == "locked"]
    assert len(locked) == 2 and {e["source"] for e in locked} == {address}


def test_a_success_resets_the_username_count(client: TestClient, runtime: Any) -> None:
    name = _user(runtime)
    for _ in range(4):
        assert _login(client, name, "wrong password").status_code == 401
    assert _login(client, name, PASSWORD).status_code == 200
    for _ in range(4):
        assert _login(client, name, "wrong password").status_code == 401
    assert _login(client, name, PASSWORD).status_code == 200  # 4 since the last success: not locked
    for _ in range(5):
        assert _login(client, name, "wrong password").status_code == 401
    assert _login(client, name, PASSWORD).status_code == 429


def test_an_address_is_locked_after_more_failures_than_a_username(client: TestClient, app: Any, runtime: Any) -> None:
    throttle = runtime.accounts.throttle
    defaults = throttle.limits
    assert defaults.per_address > defaults.per_username
    # the same rule with a smaller number, so the test makes 8 argon2 checks rather than 30
    throttle.limits = LoginLimits(per_username=defaults.per_username, per_address=8, window_s=defaults.window_s)
    try:
        name = _user(runtime)
        guesser = TestClient(app, client=("10.250.1.1", 1))  # no lifespan: the session's app is already running
        for i in range(8):
            # a different (unknown) username each time: no username lock, only the address counts
            assert _login(guesser, f"guess{i}-{uuid.uuid4().hex[:4]}", "pw").status_code == 401
        r = _login(guesser, name, PASSWORD)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        entry = runtime.accounts.audit_log.search(actor=name, action="login.failure", limit=1).entries[0]
        assert entry["detail"] == {"reason": "locked", "by": "address"}
        assert _login(client, name, PASSWORD).status_code == 200  # another address is not affected
    finally:
        throttle.limits = defaults


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_slides_and_the_lock_ends(tmp_path: Path) -> None:
    clock = Clock()
    accounts = Accounts(f"sqlite:///{tmp_path / 'a.db'}", clock=clock, hasher=FAST_HASHER,
                        login_limits=LoginLimits(per_username=3, per_address=100, window_s=600))
    accounts.create_user("lin", PASSWORD, "agent")
    auth = Auth(accounts)
    for i in range(3):  # failures at t, t+100, t+200
        clock.now += 100 if i else 0
        with pytest.raises(ApiError) as bad:
            auth.login("lin", "nope-nope", "1.1.1.1")
        assert bad.value.status == 401
    with pytest.raises(ApiError) as locked:
        auth.login("lin", PASSWORD, "1.1.1.1")
    # the first failure leaves the 600 s window at t+600: now is t+200
    assert locked.value.status == 429 and locked.value.headers == {"Retry-After": "400"}
    clock.now += 399
    with pytest.raises(ApiError) as still:
        auth.login("LIN ", PASSWORD, "1.1.1.1")  # the count is per username whatever its case and spaces
    assert still.value.headers == {"Retry-After": "1"}
    clock.now += 1  # refused attempts while locked do not count: the lock ends on time
    assert auth.login("lin", PASSWORD, "1.1.1.1").user.username == "lin"


def test_replicas_share_the_counts(tmp_path: Path) -> None:
    """Two servers over one database (two engines, as two replicas have) see each other's failures."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = Accounts(url, hasher=FAST_HASHER), Accounts(url, hasher=FAST_HASHER)
    first.create_user("wang", PASSWORD, "editor")
    a, b = Auth(first), Auth(second)
    for auth in (a, b, a, b, a):
        with pytest.raises(ApiError):
            auth.login("wang", "wrong-wrong", "2.2.2.2")
    with pytest.raises(ApiError) as locked:
        b.login("wang", PASSWORD, "3.3.3.3")
    assert locked.value.status == 429


def test_replicas_share_the_counts_on_postgresql(pg_url: str) -> None:
    accounts: list[Accounts | None] = [None, None]
    errors: list[BaseException] = []

    def open_one(i: int) -> None:
        try:
            accounts[i] = Accounts(pg_url, hasher=FAST_HASHER)
        except BaseException as err:
            errors.append(err)

    # two replicas starting at once create the tables and triggers without tripping over each other
    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    first, second = accounts
    assert first is not None and second is not None
    first.create_user("zhou", PASSWORD, "agent")
    for auth in (Auth(first), Auth(second)) * 2 + (Auth(first),):
        with pytest.raises(ApiError):
            auth.login("zhou", "wrong-wrong", "4.4.4.4")
    with pytest.raises(ApiError) as locked:
        Auth(second).login("zhou", PASSWORD, "4.4.4.5")
    assert locked.value.status == 429
    first.engine.dispose()
    second.engine.dispose()


# ---- config.yml's login_limits section ------------------------------------------------------------------------


def test_config_yml_sets_the_servers_limits(tmp_path: Path, backoffice: Any) -> None:
    """A server built from a project whose config.yml says 2 failures within 2 minutes locks after the second."""
    from connectors.server import build_runtime, create_server_app

    config = copy_demo_project(tmp_path, kb_docs=(), faq_lines=1, database="limits.db", backoffice_url=backoffice.url)
    config["login_limits"] = {"per_username": 2, "per_address": 50, "window_s": 120}
    runtime = build_runtime(write_config(tmp_path, config), with_knowledge=False)
    assert runtime.accounts.throttle.limits == LoginLimits(per_username=2, per_address=50, window_s=120)
    runtime.accounts.hasher = FAST_HASHER
    runtime.accounts.create_user("guo", PASSWORD, "agent")
    client = TestClient(create_server_app(tmp_path, runtime=runtime), client=("10.251.0.1", 1))
    for _ in range(2):
        assert _login(client, "guo", "wrong password", "/console/api/login").status_code == 401
    locked = _login(client, "guo", PASSWORD, "/console/api/login")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 120  # the configured window, not the default 15 minutes
    runtime.accounts.engine.dispose()


@pytest.mark.parametrize(("key", "value", "rule"), [
    ("per_username", 0, "greater than or equal to 1"),
    ("per_address", -3, "greater than or equal to 1"),
    ("window_s", 0, "greater than 0"),
    ("window_s", -60, "greater than 0"),
])
def test_config_yml_refuses_limits_that_are_not_positive(tmp_path: Path, key: str, value: float, rule: str) -> None:
    (tmp_path / "config.yml").write_text(f"login_limits:\n  {key}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as bad:
        load_config(tmp_path)
    message = str(bad.value)
    assert "config.yml: invalid configuration / 配置无效" in message
    assert f"login_limits.{key}: Input should be {rule}" in message
