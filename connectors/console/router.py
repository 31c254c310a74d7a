"""The staff console API: ``/console/api/*`` (REST) and ``/console/ws`` (live updates), all behind a login.

Only the login call and the static page answer without a session; every other route depends on
``Auth.require_role("agent", "admin")`` at the router level, so a new route cannot forget it.
(No ``from __future__ import annotations``: FastAPI must see the local ``Annotated`` aliases as objects.)
"""


import asyncio
import contextlib
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts import Accounts, Auth, Login, User, client_address
from assistant.errors import ApiError
from assistant.handoff.config import HandoffConfig
from assistant.handoff.service import OUTCOMES, HandoffService
from connectors.staff_session import StaffSession, add_session_routes

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
STAFF = ("agent", "admin")
REVEAL_ROLES = ("admin",)
MAX_TEXT = 4000
PUBLIC_PATHS = frozenset({"/console", "/console/static/{name}", "/console/api/login"})


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=MAX_TEXT)


class Typing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on: bool = True


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_agent: str | None = Field(None, max_length=64)
    to_team: str | None = Field(None, max_length=40)
    note: str = Field("", max_length=MAX_TEXT)


class Close(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(..., description=f"one of {', '.join(OUTCOMES)}")
    note: str = Field("", max_length=MAX_TEXT)


class Reveal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # a transcript entry, or the current form when absent
    index: int | None = Field(None, ge=0)


class Presence:
    """Who has the console open (several tabs count once); the queue's waiting-time estimate uses it."""

    def __init__(self) -> None:
        self.sockets: Counter[str] = Counter()

    def add(self, username: str) -> None:
        self.sockets[username] += 1

    def remove(self, username: str) -> None:
        self.sockets[username] -= 1
        if self.sockets[username] <= 0:
            del self.sockets[username]

    def online(self) -> list[str]:
        return sorted(self.sockets)


# per-conversation updates; everything else (queue, presence, tickets) goes to every console
_CONVERSATION_UPDATES = frozenset({"message", "typing", "note", "delivery", "rated"})


def _relevant(update: dict[str, Any], who: Login, watching: set[str]) -> bool:
    """Whether a console socket needs ``update``: a conversation's traffic goes to the tab showing it and to the
    agent holding it; a waiting conversation's messages go to everyone (they update the queue's previews)."""
    if update.get("type") not in _CONVERSATION_UPDATES:
        return True
    if update.get("conversation_id") in watching:
        return True
    if update.get("agent_id") == who.user.username:
        return True
    return update.get("type") == "message" and update.get("state") == "waiting"


def make_console_router(service: HandoffService, accounts: Accounts, config: HandoffConfig) -> APIRouter:
    auth = Auth(accounts)
    presence = Presence()
    service.deps.agents_online = lambda: len(presence.sockets)
    staff = auth.require_role(*STAFF)
    admin = auth.require_role(*REVEAL_ROLES)
    Staff = Annotated[Login, Depends(staff)]
    Admin = Annotated[Login, Depends(admin)]

    public = APIRouter(tags=["console"])
    private = APIRouter(tags=["console"], dependencies=[Depends(staff)])

    # --- public: the page and logging in ------------------------------------------------------------------
    @public.get("/console", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "console.html", media_type="text/html; charset=utf-8",
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; "
                                                                "frame-ancestors 'none'"})

    @public.get("/console/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        types = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
        if name not in types:
            raise ApiError(404, "not_found", "找不到请求的资源", "Not found")
        return FileResponse(STATIC / name, media_type=types[name])

    def console_me(user: User) -> dict[str, Any]:
        return {
            "teams": [t.model_dump() for t in config.teams],
            "canned_replies": [c.model_dump() for c in config.canned_replies],
            "outcomes": list(OUTCOMES), "can_reveal": user.role in REVEAL_ROLES,
        }

    # agents and admins only; the token is in the login answer for API clients. Logout and ``me`` go on the
    # private router, whose role check runs for every route there
    session = StaffSession("/console/api", STAFF, "console", token_in_body=True,
                           cookie_secure=config.console.cookie_secure, me_extra=console_me)
    add_session_routes(public, auth, session, private=private, role_check=staff)

    # --- private ------------------------------------------------------------------------------------------
    @private.get("/console/api/queue")
    async def queue(who: Staff) -> dict[str, Any]:
        return {"sessions": await service.queue(), "online": presence.online()}

    @private.get("/console/api/live")
    async def live(who: Staff) -> dict[str, Any]:
        return {"conversations": service.live(config.console.live_minutes)}

    @private.get("/console/api/agents")
    async def agents(who: Staff) -> dict[str, Any]:
        online = set(presence.online())
        return {"agents": [{**u.to_json(), "online": u.username in online} for u in accounts.users() if u.active]}

    @private.get("/console/api/tickets")
    async def tickets(who: Staff, status: str | None = "open") -> dict[str, Any]:
        from assistant.handoff.view import mask_text

        return {"tickets": [{**t.to_json(), "text": mask_text(t.text)} for t in service.store.tickets(status or None)]}

    @private.post("/console/api/tickets/{ref}/handled")
    async def ticket_handled(ref: str, who: Staff) -> dict[str, Any]:
        done = service.store.handle_ticket(ref, who.user.username, service.clock())
        if done is None:
            raise ApiError(409, "not_open", "留言不存在或已处理", "No such open ticket")
        return {"ticket": done.ref, "status": done.status}

    @private.get("/console/api/conversations/{cid}")
    async def conversation(cid: str, who: Staff) -> dict[str, Any]:
        return await service.view(cid)

    @private.post("/console/api/conversations/{cid}/claim")
    async def claim(cid: str, who: Staff, request: Request) -> dict[str, Any]:
        out = await service.claim(cid, who.user)
        accounts.audit(who.user.username, "handoff.claim", cid, client_address(request), {})
        return out

    @private.post("/console/api/conversations/{cid}/takeover")
    async def takeover(cid: str, who: Staff, request: Request) -> dict[str, Any]:
        out = await service.takeover(cid, who.user)
        accounts.audit(who.user.username, "handoff.takeover", cid, client_address(request), {})
        return out

    @private.post("/console/api/conversations/{cid}/messages")
    async def reply(cid: str, body: Text, who: Staff) -> dict[str, Any]:
        return await service.reply(cid, who.user, body.text.strip())

    @private.post("/console/api/conversations/{cid}/typing")
    async def typing(cid: str, body: Typing, who: Staff) -> dict[str, Any]:
        await service.typing(cid, who.user, body.on)
        return {"ok": True}

    @private.post("/console/api/conversations/{cid}/transfer")
    async def transfer(cid: str, body: Transfer, who: Staff, request: Request) -> dict[str, Any]:
        target = None
        if body.to_agent:
            target = accounts.get(body.to_agent)
            if target is None or not target.active or target.role not in STAFF:
                raise ApiError(422, "unknown_agent", "没有这位工作人员", f"Unknown agent {body.to_agent!r}")
        out = await service.transfer(cid, who.user, to_agent=target, to_team=body.to_team, note=body.note)
        accounts.audit(who.user.username, "handoff.transfer", cid, client_address(request),
                       {"to_agent": body.to_agent, "to_team": body.to_team})
        return out

    @private.post("/console/api/conversations/{cid}/return")
    async def return_to_bot(cid: str, who: Staff) -> dict[str, Any]:
        return await service.return_to_bot(cid, who.user)

    @private.post("/console/api/conversations/{cid}/close")
    async def close(cid: str, body: Close, who: Staff) -> dict[str, Any]:
        return await service.close(cid, who.user, body.outcome, body.note)

    @private.post("/console/api/conversations/{cid}/notes")
    async def note(cid: str, body: Text, who: Staff) -> dict[str, Any]:
        return await service.note(cid, who.user, body.text)

    @private.post("/console/api/conversations/{cid}/reveal")
    async def reveal(cid: str, body: Reveal, who: Admin, request: Request) -> dict[str, Any]:
        item = await service.reveal(cid, body.index)
        accounts.audit(who.user.username, "pii.reveal", cid, client_address(request),
                       {"index": body.index if body.index is not None else "form"})
        return {"item": item}

    @private.get("/console/api/audit")
    async def audit(who: Admin, action: str | None = None) -> dict[str, Any]:
        return {"entries": accounts.audit_entries(action)}

    # --- live updates -------------------------------------------------------------------------------------
    @public.websocket("/console/ws")
    async def socket(ws: WebSocket) -> None:
        who = auth.websocket_login(ws, *STAFF)
        if who is None:
            # refuse the handshake: nothing is sent to an unauthenticated socket
            await ws.close(code=4401)
            return
        await ws.accept()
        username = who.user.username
        presence.add(username)
        service.deps.bus.publish({"type": "presence", "online": presence.online()})
        try:
            async with service.deps.bus.subscribe() as sub:
                await ws.send_json({"type": "hello", "user": who.user.to_json(), "online": presence.online()})
                watching: set[str] = set()
                pump = asyncio.create_task(_pump(ws, sub, who, watching))
                try:
                    while True:
                        raw = await ws.receive_text()
                        await _on_client(ws, raw, who, watching)
                finally:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pump
        except WebSocketDisconnect:
            pass
        finally:
            presence.remove(username)
            service.deps.bus.publish({"type": "presence", "online": presence.online()})

    async def _pump(ws: WebSocket, sub: Any, who: Login, watching: set[str]) -> None:
        while True:
            update = await sub.get()
            if _relevant(update, who, watching):
                await ws.send_json(update)

    async def _on_client(ws: WebSocket, raw: str, who: Login, watching: set[str]) -> None:
        if len(raw) > 10_000:
            return
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if data.get("type") == "watch" and isinstance(data.get("conversation_id"), str):
            # the conversation this tab shows: its messages, notes and typing come here too
            watching.clear()
            watching.add(data["conversation_id"][:255])
        elif data.get("type") == "ping":
            await ws.send_json({"type": "pong", "t": data.get("t")})
        elif data.get("type") == "typing" and isinstance(data.get("conversation_id"), str):
            # the session may have ended meanwhile: a typing signal is not worth an error
            with contextlib.suppress(ApiError):
                await service.typing(data["conversation_id"], who.user, bool(data.get("on", True)))

    router = APIRouter()
    router.include_router(public)
    router.include_router(private)
    return router
