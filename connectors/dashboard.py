"""The editors' dashboard API and the citizens' satisfaction ratings from the web chat widget.

``GET /api/dashboard?days=14`` (roles admin and editor) returns the figures of ``assistant.analytics``.
``POST /webchat/feedback`` ``{sender_id, score, comment}`` stores a 1–5 rating of the sender's own web chat
conversation. The web chat knows a citizen only by the random session id the widget keeps in local storage (it
is the conversation id): knowing it is what makes a conversation one's own, as for ``/webchat/history``. The
rating must name the same session as the request's ``X-Session-Id`` (which the rate limiter counts), and the
conversation must be a web chat conversation with a citizen message in it (see ``assistant.feedback``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from assistant.accounts import Auth, Login
from assistant.analytics import Analytics
from assistant.errors import ApiError
from assistant.feedback import MAX_COMMENT, MAX_SCORE, MIN_SCORE, FeedbackStore
from assistant.store import make_engine
from connectors.webchat import SESSION_RE

log = logging.getLogger(__name__)
CHANNEL = "webchat"
MAX_DAYS = 90


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sender_id: str = Field(..., pattern=SESSION_RE)
    score: StrictInt = Field(..., ge=MIN_SCORE, le=MAX_SCORE)
    comment: str | None = Field(None, max_length=MAX_COMMENT)


def make_dashboard_router(analytics: Analytics, feedback: FeedbackStore, auth: Auth,
                          handoff: Any | None = None) -> APIRouter:
    router = APIRouter()
    editor = auth.require_role("admin", "editor")

    @router.get("/api/dashboard", tags=["dashboard"])
    async def dashboard(
        days: int = Query(14, ge=1, le=MAX_DAYS, description="window in days, today included (Asia/Shanghai)"),
        login: Login = Depends(editor),  # noqa: B008
    ) -> dict[str, Any]:
        # SQL work: off the event loop so chats are not held up by an editor's refresh
        return await asyncio.to_thread(analytics.dashboard, days)

    @router.post("/webchat/feedback", tags=["webchat"], status_code=201)
    async def rate(
        body: FeedbackIn,
        x_session_id: str | None = Header(None, alias="X-Session-Id"),  # noqa: B008
    ) -> dict[str, Any]:
        if x_session_id != body.sender_id:
            raise ApiError(403, "feedback.not_your_conversation", "只能评价您自己的会话",
                           "You can only rate your own conversation")
        saved = await asyncio.to_thread(feedback.add, body.sender_id, body.score, body.comment, CHANNEL)
        if handoff is not None:
            await asyncio.to_thread(_mark_handoff_rated, handoff, body.sender_id, body.score)
        return {"id": saved.id, "score": saved.score, "at": saved.at.isoformat(),
                "message_zh": "感谢您的评价！", "message_en": "Thank you for your feedback!"}

    return router


def _mark_handoff_rated(handoff: Any, conversation_id: str, score: int) -> None:
    """After a staff member closed the conversation the widget's stars are the rating of that episode: record it
    there too (the console shows it), as a rating typed into the chat would be."""
    session = handoff.store.rate(conversation_id, score)
    if session is not None:
        handoff.deps.bus.publish({"type": "rated", "conversation_id": conversation_id, "rating": score,
                                  "session_id": session.id})


def attach_dashboard(runtime: Any) -> None:
    """Mount the dashboard and feedback routes on ``runtime`` (after ``attach_console``: it needs the accounts);
    a second call changes nothing."""
    if getattr(runtime, "analytics", None) is not None:
        return
    engine = getattr(runtime.agent.store, "engine", None) or make_engine(runtime.database_url)
    feedback = FeedbackStore(engine)
    knowledge = getattr(runtime, "knowledge", None)
    analytics = Analytics(engine, feedback, knowledge.session_factory if knowledge is not None else None)
    runtime.analytics = analytics
    runtime.feedback = feedback
    runtime.routers.append(make_dashboard_router(analytics, feedback, Auth(runtime.accounts),
                                                 getattr(runtime, "handoff", None)))
