"""The web chat channel: WebSocket with a REST fallback, history for page reloads, exactly-once messages.

The widget gives every message a client-made id and re-sends unacknowledged ones after a reconnect; a message id
seen before returns the replies it produced the first time instead of running the turn again, so a flaky network
neither loses nor duplicates anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.agent import UserMessage
from assistant.errors import ApiError, error_for_status
from assistant.limits import TokenBucket
from assistant.outage import RETRY_AFTER_S, as_api_error
from connectors.rendering import reply_to_webchat

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
SESSION_RE = r"^[A-Za-z0-9_\-]{8,64}$"
MAX_TEXT = 2000
# Characters that never carry meaning in a chat message and are removed: control characters other than tab and
# newline (C0, DEL, C1); bidirectional marks, embeddings, overrides and isolates, which can make a transcript read
# other than it is written ("Trojan Source"); and zero-width and invisible characters except the joiner (U+200D)
# that emoji sequences need. (Lone surrogates never get here: pydantic refuses them as string_unicode.)
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b\u200c\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]"
)


class WebchatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = "云州市政务服务助手"
    max_text: int = Field(MAX_TEXT, ge=10, le=20_000)
    # messages over a WebSocket pass no HTTP middleware: their own per-session limit
    ws_per_minute: int = Field(60, ge=1)
    ws_burst: int = Field(20, ge=1)


class IncomingMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    session_id: str = Field(..., pattern=SESSION_RE)
    message_id: str = Field(..., min_length=1, max_length=64)
    text: str = Field(..., min_length=1)


def clean_text(text: str, limit: int) -> str:
    text = _CONTROL.sub("", text).strip()
    if not text:
        raise ApiError(422, "empty_message", "消息不能为空", "The message is empty")
    if len(text) > limit:
        raise too_long(limit)
    return text


def too_long(limit: int) -> ApiError:
    return ApiError(413, "message_too_long", f"消息过长（最多{limit}字）", f"Message too long (max {limit} characters)")


def transcript(events: Sequence[Any]) -> list[dict[str, Any]]:
    """User and bot messages of a tracker, in order, as the widget shows them."""
    out: list[dict[str, Any]] = []
    for e in events:
        kind = type(e).__name__
        if kind == "UserUttered":
            out.append({"role": "user", "text": e.text, "message_id": e.message_id, "ts": e.timestamp})
        elif kind == "BotUttered":
            data = e.data or {}
            out.append(
                {
                    "role": "bot",
                    "text": e.text or "",
                    "buttons": data.get("buttons") or [],
                    "citations": data.get("citations") or [],
                    "image": data.get("image"),
                    "custom": data.get("custom"),
                    "ts": e.timestamp,
                }
            )
    return out


def replies_to(events: Sequence[Any], message_id: str) -> list[dict[str, Any]] | None:
    """The bot messages that answered ``message_id``, or None if that message was never processed."""
    items = transcript(events)
    for i, item in enumerate(items):
        if item["role"] == "user" and item.get("message_id") == message_id:
            answer = []
            for later in items[i + 1 :]:
                if later["role"] == "user":
                    break
                # the same shape as a first answer, so a re-sent message renders identically
                answer.append({k: v for k, v in later.items() if k != "ts"})
            return answer
    return None


class WebchatChannel:
    name = "webchat"

    def __init__(self, runtime: Any, settings: dict[str, Any]) -> None:
        self.runtime = runtime
        self.settings = WebchatSettings.model_validate(settings)
        self._sockets: dict[str, set[WebSocket]] = defaultdict(set)
        self._session_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._ws_bucket = TokenBucket(self.settings.ws_per_minute / 60.0, self.settings.ws_burst)
        # told (session id, True) when a session's first socket opens here and (session id, False) when its last
        # closes: with several replicas, pushes for the session are routed to this one meanwhile
        self.socket_listeners: list[Callable[[str, bool], None]] = []

    def _sockets_changed(self, session_id: str, held: bool) -> None:
        for listener in self.socket_listeners:
            try:
                listener(session_id, held)
            except Exception:
                log.exception("web chat socket listener failed")

    async def _events(self, session_id: str) -> Sequence[Any]:
        tracker = await self.runtime.agent.tracker(session_id)
        return tracker.events if tracker is not None else ()

    async def handle(self, msg: IncomingMessage) -> dict[str, Any]:
        text = clean_text(msg.text, self.settings.max_text)
        async with self._session_locks[msg.session_id]:
            duplicate = replies_to(await self._events(msg.session_id), msg.message_id) is not None
            # the engine answers a repeated id itself, finishing first a turn that a dying replica or a database
            # outage cut off after the message was stored (answering from the transcript here would skip that)
            replies = await self.runtime.agent.handle(
                UserMessage(
                    conversation_id=msg.session_id,
                    text=text,
                    channel=self.name,
                    message_id=msg.message_id,
                    metadata={},
                )
            )
        return {"reply_to": msg.message_id, "messages": [reply_to_webchat(r) for r in replies], "duplicate": duplicate}

    def router(self) -> APIRouter:
        router = APIRouter(tags=["webchat"])

        @router.get("/", include_in_schema=False)
        async def demo_page() -> HTMLResponse:
            page = (STATIC / "index.html").read_text(encoding="utf-8")
            page = page.replace("{{TITLE_JSON}}", json.dumps(self.settings.title).replace("<", "\\u003c"))
            return HTMLResponse(page.replace("{{TITLE}}", html.escape(self.settings.title)))

        @router.get("/webchat/widget.js", include_in_schema=False)
        async def widget_js() -> FileResponse:
            return FileResponse(STATIC / "widget.js", media_type="text/javascript; charset=utf-8")

        @router.get("/webchat/widget.css", include_in_schema=False)
        async def widget_css() -> FileResponse:
            return FileResponse(STATIC / "widget.css", media_type="text/css; charset=utf-8")

        @router.post("/webchat/messages")
        async def post_message(body: IncomingMessage) -> dict[str, Any]:
            return await self.handle(body)

        @router.get("/webchat/history")
        async def history(session_id: str = Query(..., pattern=SESSION_RE)) -> dict[str, Any]:
            return {"session_id": session_id, "messages": transcript(await self._events(session_id))}

        @router.websocket("/webchat/ws")
        async def socket(ws: WebSocket, session_id: str = Query(..., pattern=SESSION_RE)) -> None:
            await ws.accept()
            first = not self._sockets.get(session_id)
            self._sockets[session_id].add(ws)
            if first:
                self._sockets_changed(session_id, True)
            try:
                while True:
                    raw = await ws.receive_text()
                    await self._on_socket_message(ws, session_id, raw)
            except WebSocketDisconnect:
                pass
            finally:
                self._sockets[session_id].discard(ws)
                if not self._sockets[session_id]:
                    self._sockets.pop(session_id, None)
                    self._sockets_changed(session_id, False)

        return router

    async def _on_socket_message(self, ws: WebSocket, session_id: str, raw: str) -> None:
        if len(raw) > self.settings.max_text * 4 + 1024:
            await ws.send_json({"type": "error", **too_long(self.settings.max_text).body()})
            return
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            if data.get("type") == "ping":
                await ws.send_json({"type": "pong"})
                return
            if data.get("type") == "typing":
                # shown to the staff member holding the conversation, if any
                handoff = getattr(self.runtime, "handoff", None)
                if handoff is not None:
                    handoff.citizen_typing(session_id)
                return
            msg = IncomingMessage.model_validate({**data, "session_id": session_id})
        except (ValueError, ValidationError):
            await ws.send_json({"type": "error", "code": "invalid_request", "message_zh": "消息格式不正确", "message_en": "Malformed message"})
            return
        wait = self._ws_bucket.take(session_id)
        if wait > 0:
            err = error_for_status(429)
            await ws.send_json({"type": "error", "reply_to": msg.message_id, "retry_after": max(1, int(wait + 0.999)), **err.body()})
            return
        try:
            clean_text(msg.text, self.settings.max_text)  # refused at once: no "typing" for a message never read
        except ApiError as err:
            await ws.send_json({"type": "error", "reply_to": msg.message_id, **err.body()})
            return
        await ws.send_json({"type": "typing", "reply_to": msg.message_id})
        try:
            result = await self.handle(msg)
        except ApiError as err:
            # a retryable refusal (the conversation is busy or moved on another replica) says when to send again,
            # and the widget keeps the message until then
            await ws.send_json({"type": "error", "reply_to": msg.message_id, **err.retry_hint(), **err.body()})
            return
        except Exception as exc:
            # a database or Redis outage: tell the widget (it re-sends the same id later) instead of dropping the socket
            outage = as_api_error(exc)
            if outage is None:
                raise
            await ws.send_json({"type": "error", "reply_to": msg.message_id, "retry_after": RETRY_AFTER_S,
                                **outage.body()})
            return
        await ws.send_json({"type": "bot", **result})

    async def send(self, recipient_id: str, replies: Sequence[Any]) -> bool:
        sockets = list(self._sockets.get(recipient_id, ()))
        payload = {"type": "push", "messages": [reply_to_webchat(r) for r in replies]}
        delivered = False
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.send_json(payload)
                delivered = True
        # a citizen without an open socket still sees the message in the history on the next load
        return delivered


def make_channel(runtime: Any, settings: dict[str, Any]) -> WebchatChannel:
    return WebchatChannel(runtime, settings)
