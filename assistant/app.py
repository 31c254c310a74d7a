"""The FastAPI application: assembled from parts, nothing more.

Channels come from config by name (entry points), the knowledge API is mounted when the runtime has a knowledge
base, and request guards wrap everything. Models are loaded once, by whoever builds the runtime, not here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from assistant.channels import build_channels
from assistant.errors import install_error_handlers
from assistant.limits import BodySizeLimit, JsonTextGuard, RateLimit, Timeout
from assistant.outage import OutageGuard
from assistant.server_config import ServerConfig


def create_app(runtime: Any, server: ServerConfig, channels: dict[str, dict[str, Any] | None]) -> FastAPI:
    app = FastAPI(
        title="gov-assistant",
        description="政务服务智能助手 API / government-services assistant API",
        version="0.1.0",
    )
    install_error_handlers(app)
    app.state.runtime = runtime
    app.state.channels = {c.name: c for c in build_channels(runtime, channels)}
    for channel in app.state.channels.values():
        app.include_router(channel.router())
        # a channel with its own protocol server (socket.io) hands over whole ASGI apps to mount
        for path, asgi in getattr(channel, "asgi_mounts", dict)().items():
            app.mount(path, asgi)
    for router in getattr(runtime, "extra_routers", lambda: [])():
        app.include_router(router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        checks: dict[str, bool] = runtime.readiness()
        ok = all(checks.values())
        body = {"status": "ready" if ok else "not_ready", "checks": checks}
        if not ok:
            body |= {"code": "not_ready", "message_zh": "服务尚未就绪", "message_en": "Service not ready"}
        return JSONResponse(body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": "5"})

    # innermost: a database or Redis outage raised by any route becomes 503 + Retry-After, not 500
    app.add_middleware(OutageGuard)
    # JSON text that is not valid Unicode is refused (400) before a route can fail on it
    app.add_middleware(JsonTextGuard)
    # outermost first: size is checked before anything reads the body
    # socket.io long-polls are held open for the ping interval (25 s) by design
    app.add_middleware(Timeout, seconds=server.timeout_s, exempt=("/socket.io",))
    app.add_middleware(RateLimit, per_minute=server.rate_per_minute, burst=server.rate_burst, exempt=("/healthz", "/readyz", "/webchat/widget", "/docs", "/openapi.json"))
    app.add_middleware(BodySizeLimit, max_bytes=server.max_body_bytes)
    if server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=server.cors_origins, allow_methods=["*"], allow_headers=["*"])
    return app
