"""Settings of the HTTP server and its channels (``server:`` and ``channels:`` in config.yml)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    rate_per_minute: int = Field(120, ge=1)
    rate_burst: int = Field(30, ge=1)
    timeout_s: float = Field(30.0, gt=0)
    cors_origins: list[str] = Field(default_factory=list)


def default_channels() -> dict[str, dict[str, Any] | None]:
    return {"rest": {}, "webchat": {}, "socketio": {}}
