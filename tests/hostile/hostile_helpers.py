"""Helpers shared by the hostile-input tests."""

from __future__ import annotations

import hashlib
import time
from typing import Any

WECHAT_TOKEN = "hostiletoken"
PASSWORD = "hostile-horse-battery"
# (username, role, display name, team); "editor" exists once issue 7 adds it to assistant.accounts.ROLES
STAFF = (
    ("h_agent", "agent", "王芳", "general"),
    ("h_admin", "admin", "张主任", None),
    ("h_editor", "editor", "李编辑", None),
)


def assert_error_body(body: Any) -> None:
    """A bilingual ApiError body: a stable code, a Chinese message and an English one."""
    assert isinstance(body, dict), body
    for key in ("code", "message_zh", "message_en"):
        assert isinstance(body.get(key), str) and body[key], (key, body)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message_zh"]), body
    assert body["message_en"].isascii(), body


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted parts joined."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def wechat_query(token: str = WECHAT_TOKEN, timestamp: str | None = None, nonce: str = "n0nce") -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}


def staff_user(runtime: Any, role: str) -> Any:
    """The suite's staff account with ``role``, or None when this checkout has no such role."""
    username = next(u for u, r, _, _ in STAFF if r == role)
    return runtime.accounts.get(username)


def user_texts(runtime: Any, conversation_id: str) -> list[str]:
    """What the engine recorded the citizen as saying in ``conversation_id`` (nothing when never processed)."""
    import asyncio

    tracker = asyncio.run(runtime.agent.tracker(conversation_id))
    if tracker is None:
        return []
    return [e.text for e in tracker.events if type(e).__name__ == "UserUttered"]
