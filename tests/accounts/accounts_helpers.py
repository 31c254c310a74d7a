"""Helpers and constants of the accounts tests (imported by the conftest and the test modules)."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher

PASSWORD = "correct horse battery"
KB_DOCS = ("appointment-rules.md", "citizen-centre.md", "idcard-renew.md")
KB_FAQ_LINES = 8
# one account per role, plus a second admin so that account tests never touch the last-admin rule by accident
STAFF = {"agent1": "agent", "editor1": "editor", "admin1": "admin", "admin2": "admin"}
ROLE_USER = {"agent": "agent1", "editor": "editor1", "admin": "admin1"}
# for the tests' own Accounts: argon2 with cheap parameters (the server's are the library's, ~1 s per login on a
# busy test machine)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def bearer(runtime: Any, username: str) -> dict[str, str]:
    """Headers of a fresh session of ``username`` (no login call, so no login limits or audit entries)."""
    user = runtime.accounts.get(username)
    assert user is not None, username
    token, _csrf, _expires = runtime.accounts.open_session(user)
    return {"Authorization": f"Bearer {token}"}


def role_headers(runtime: Any, role: str) -> dict[str, str]:
    return bearer(runtime, ROLE_USER[role])
