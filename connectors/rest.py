"""Rasa-compatible HTTP endpoints: the REST channel webhook and ``/model/parse``.

Existing Rasa clients post ``{"sender", "message", "metadata"}`` and get a list of messages back; we keep that
shape exactly so they work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from assistant.agent import UserMessage
from connectors.rendering import reply_to_rasa

MAX_TEXT = 5000


class RestMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sender: str = Field("default", min_length=1, max_length=128)
    message: str = Field(..., max_length=MAX_TEXT)
    metadata: dict[str, Any] | None = None
    # not in Rasa's REST channel: a client that retries (after a timeout or a replica's death) sends the same id,
    # and the message is processed once (the retry gets the first delivery's replies)
    message_id: str | None = Field(None, min_length=1, max_length=128)


class ParseRequest(BaseModel):
    text: str = Field(..., max_length=MAX_TEXT)
    message_id: str | None = None


class RestChannel:
    name = "rest"

    def __init__(self, runtime: Any, settings: dict[str, Any]) -> None:
        if settings:
            raise ValueError(f"channels.rest: unknown settings {sorted(settings)}")
        self.runtime = runtime

    def router(self) -> APIRouter:
        router = APIRouter(tags=["rasa"])

        @router.post("/webhooks/rest/webhook")
        async def webhook(body: RestMessage) -> list[dict[str, Any]]:
            replies = await self.runtime.agent.handle(
                UserMessage(
                    conversation_id=body.sender, text=body.message, channel="rest", message_id=body.message_id,
                    metadata=body.metadata or {},
                )
            )
            return [reply_to_rasa(body.sender, r) for r in replies]

        @router.get("/webhooks/rest/")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @router.post("/model/parse")
        async def parse(body: ParseRequest) -> dict[str, Any]:
            return self.runtime.interpreter.parse(body.text).to_rasa()

        return router

    async def send(self, recipient_id: str, replies: Sequence[Any]) -> bool:
        # REST is request/response only: nothing can be pushed later
        return False


def make_channel(runtime: Any, settings: dict[str, Any]) -> RestChannel:
    return RestChannel(runtime, settings)
