"""What the fault tests get: the replica, the proxies in front of its services, and direct access to the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from replicas import Replica
from sqlalchemy import text
from sqlalchemy.engine import Engine
from tcp_proxy import TcpProxy

from connectors.backoffice_demo import RunningBackOffice


@dataclass
class FaultRig:
    replica: Replica
    pg: TcpProxy
    redis: TcpProxy | None
    backoffice: RunningBackOffice
    backoffice_proxy: TcpProxy
    # the test database reached directly (not through the proxy): for checking what was stored
    db: Engine

    def post(self, session: str, message_id: str, text: str, timeout: float = 30.0) -> httpx.Response:
        return httpx.post(
            f"{self.replica.url}/webchat/messages",
            json={"session_id": session, "message_id": message_id, "text": text},
            headers={"X-Session-Id": session},
            timeout=timeout,
        )

    def user_messages(self, session: str) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                text("SELECT payload FROM dialogue_events WHERE conversation_id = :c AND type = 'user' ORDER BY seq"),
                {"c": session},
            ).all()
        return [r.payload for r in rows]

    def bot_texts(self, session: str) -> list[str]:
        with self.db.connect() as conn:
            rows = conn.execute(
                text("SELECT payload FROM dialogue_events WHERE conversation_id = :c AND type = 'bot' ORDER BY seq"),
                {"c": session},
            ).all()
        return [str(r.payload.get("text") or "") for r in rows]
