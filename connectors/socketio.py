"""Rasa's socket.io channel, so the rasa-webchat widget (and any Rasa socket.io client) works unchanged.

The protocol is Rasa's (``rasa/core/channels/socketio.py``): ``session_request`` is answered by ``session_confirm``
with the client's own session id when it sends one (session persistence), ``user_uttered``
``{"message", "session_id"}`` runs one turn and every reply comes back as a ``bot_uttered`` event shaped as Rasa's
``SocketIOOutput`` emits it: ``{"text"}``, ``{"text", "quick_replies"}``, ``{"attachment"}``.

The channel is a python-socketio ``AsyncServer`` served as its own ASGI app, mounted by ``assistant.app`` at
``/socket.io`` through the optional ``asgi_mounts()`` of the channel seam.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

import socketio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp

from assistant.agent import UserMessage
from assistant.errors import ApiError, error_for_status
from assistant.limits import TokenBucket
from assistant.outage import RETRY_AFTER_S, as_api_error
from connectors.webchat import clean_text

log = logging.getLogger(__name__)
_SESSION_ID = re.compile(r"^[A-Za-z0-9_\-:.]{1,128}$")


class SocketIOSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_message_evt: str = "user_uttered"
    bot_message_evt: str = "bot_uttered"
    namespace: str | None = None
    # rasa-webchat sends its stored session id with every message; without persistence the socket id is the sender
    session_persistence: bool = True
    socketio_path: str = "/socket.io"
    cors_allowed_origins: list[str] | str = Field(default_factory=list)
    max_text: int = Field(2000, ge=10, le=20_000)
    # socket.io messages pass no HTTP middleware: their own per-sender limit
    per_minute: int = Field(60, ge=1)
    burst: int = Field(20, ge=1)


def rasa_messages(reply: Any) -> list[dict[str, Any]]:
    """One engine reply as the ``bot_uttered`` payloads Rasa's socket.io output would emit for it.

    Rasa splits text on blank lines into separate bubbles and puts quick replies on the last one; images go as an
    attachment. Citations have no Rasa shape: they ride along as ``metadata`` (rasa-webchat ignores unknown keys).
    """
    out: list[dict[str, Any]] = []
    parts = [p for p in (reply.text or "").strip().split("\n\n") if p] if reply.text else []
    for part in parts:
        out.append({"text": part})
    if reply.buttons:
        quick = [{"content_type": "text", "title": b.title, "payload": b.payload} for b in reply.buttons]
        if out:
            out[-1]["quick_replies"] = quick
        else:
            out.append({"text": "", "quick_replies": quick})
    if reply.image:
        out.append({"attachment": {"type": "image", "payload": {"src": reply.image}}})
    if reply.custom:
        out.append(dict(reply.custom))
    if reply.citations and out:
        out[-1]["metadata"] = {"citations": list(reply.citations)}
    return out


class SocketIOChannel:
    name = "socketio"

    def __init__(self, runtime: Any, settings: dict[str, Any]) -> None:
        self.runtime = runtime
        self.settings = SocketIOSettings.model_validate(settings)
        s = self.settings
        self.sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=s.cors_allowed_origins, logger=False)
        self._bucket = TokenBucket(s.per_minute / 60.0, s.burst)
        self._register(self.sio)

    def _register(self, sio: socketio.AsyncServer) -> None:
        s = self.settings

        @sio.on("connect", namespace=s.namespace)
        async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            log.debug("socket.io client connected")

        @sio.on("session_request", namespace=s.namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            session_id = data.get("session_id") if isinstance(data, dict) else None
            if not (isinstance(session_id, str) and _SESSION_ID.match(session_id)):
                session_id = uuid.uuid4().hex
            # the session's room lets replies pushed later (a staff member's answer) reach every tab of it
            await sio.enter_room(sid, session_id, namespace=s.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=s.namespace)

        @sio.on(s.user_message_evt, namespace=s.namespace)
        async def user_uttered(sid: str, data: Any = None) -> None:
            await self._on_message(sid, data)

    async def _on_message(self, sid: str, data: Any) -> None:
        s = self.settings
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            await self._error(sid, "invalid_request", "消息格式不正确", "Malformed message")
            return
        if s.session_persistence:
            sender = data.get("session_id")
            if not (isinstance(sender, str) and _SESSION_ID.match(sender)):
                # as Rasa: without a session id from session_request the message cannot be attributed
                await self._error(sid, "no_session", "请先建立会话", "Send session_request first")
                return
        else:
            sender = sid
        try:
            text = clean_text(data["message"], s.max_text)
        except ApiError as err:  # empty or too long
            await self.sio.emit("error", err.body(), room=sid, namespace=s.namespace)
            return
        wait = self._bucket.take(sender)
        if wait > 0:
            body = error_for_status(429).body() | {"retry_after": max(1, int(wait + 0.999))}
            await self.sio.emit("error", body, room=sid, namespace=s.namespace)
            return
        message = UserMessage(conversation_id=sender, text=text, channel=self.name,
                              metadata=dict(data.get("customData") or {}))
        try:
            replies = await self.runtime.agent.handle(message)
        except Exception as exc:
            # refused (busy, moved on another replica) or an outage: say so and when to retry, as the web chat
            # does, instead of leaving the client waiting for an answer that never comes
            err = exc if isinstance(exc, ApiError) else as_api_error(exc)
            if err is None:
                raise
            hint = err.retry_hint() or ({"retry_after": RETRY_AFTER_S} if err.status == 503 else {})
            await self.sio.emit("error", err.body() | hint, room=sid, namespace=s.namespace)
            return
        for reply in replies:
            for payload in rasa_messages(reply):
                await self.sio.emit(s.bot_message_evt, payload, room=sid, namespace=s.namespace)

    async def _error(self, sid: str, code: str, zh: str, en: str) -> None:
        body = {"code": code, "message_zh": zh, "message_en": en}
        await self.sio.emit("error", body, room=sid, namespace=self.settings.namespace)

    def router(self) -> APIRouter:
        return APIRouter()

    def asgi_mounts(self) -> dict[str, ASGIApp]:
        """The socket.io server, to be mounted at ``socketio_path`` (it keeps its own path handling)."""
        path = self.settings.socketio_path.strip("/")
        return {"/" + path: socketio.ASGIApp(self.sio, socketio_path=path)}

    async def send(self, recipient_id: str, replies: Sequence[Any]) -> bool:
        payloads = [p for r in replies for p in rasa_messages(r)]
        room = self.sio.manager.rooms.get(self.settings.namespace or "/", {}).get(recipient_id)
        if not room:
            return False
        for payload in payloads:
            await self.sio.emit(self.settings.bot_message_evt, payload, room=recipient_id, namespace=self.settings.namespace)
        return True


def make_channel(runtime: Any, settings: dict[str, Any]) -> SocketIOChannel:
    return SocketIOChannel(runtime, settings)
