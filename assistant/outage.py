"""A database or Redis outage, as the client sees it: 503 with ``Retry-After`` and a bilingual body, fast.

Stores call PostgreSQL and Redis directly; when either is unreachable the driver raises (quickly: engines are
made with a bounded connect timeout, see ``knowledge.db.engine_options``, and the Redis client with socket timeouts). Without
this module that exception would leave as a generic 500. Here it becomes ``service_unavailable`` naming the
dependency, and the client is told when to retry. Nothing else is needed for recovery: pooled connections are
pinged before use (``pool_pre_ping``) and the Redis client reconnects, so the first request after the service
returns succeeds without a restart.

Whether the turn was half-written is the stores' business: a citizen's message and the slots it fills are one
transaction (``assistant.agent``), so a 503 means either nothing was stored or the message was stored whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import ApiError, error_response

log = logging.getLogger(__name__)

# Seconds a client should wait before retrying: the order of a database failover or a Redis restart.
RETRY_AFTER_S = 5

_DEPENDENCY_TEXT = {
    "database": ("数据库", "the database"),
    "redis": ("缓存服务", "the cache service (Redis)"),
}


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis import exceptions as r
    except ImportError:  # Redis is optional for one process
        return ()
    # BusyLoadingError (a Redis restarting from disk) is a ConnectionError subclass
    return (r.ConnectionError, r.TimeoutError)


# A statement the database refused (constraint, syntax) is a bug or a conflict, not an outage: only these mean
# "cannot reach it now". OperationalError covers refused/reset connections, failed connects and server shutdown.
_DB_ERRORS: tuple[type[BaseException], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
_REDIS_ERRORS = _redis_errors()


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` (or what it was raised from) means that service is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _DB_ERRORS):
            return "database"
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return "database"
        if _REDIS_ERRORS and isinstance(current, _REDIS_ERRORS):
            return "redis"
        current = current.__cause__ or current.__context__
    return None


def unavailable_error(dependency: str) -> ApiError:
    zh, en = _DEPENDENCY_TEXT.get(dependency, ("依赖服务", "a dependency"))
    return ApiError(
        503,
        "service_unavailable",
        f"服务暂时不可用（{zh}连接中断），请{RETRY_AFTER_S}秒后重试。",
        f"Service temporarily unavailable ({en} cannot be reached); retry in {RETRY_AFTER_S} s.",
        {"Retry-After": str(RETRY_AFTER_S)},
    )


def as_api_error(exc: BaseException) -> ApiError | None:
    """The 503 for an outage exception, or None when ``exc`` is something else (for code outside HTTP routes,
    such as a WebSocket loop, that must answer instead of dying)."""
    dependency = unavailable_dependency(exc)
    if dependency is None:
        return None
    # the type only: a SQL error's text carries the statement's parameters (personal data)
    log.warning("%s unavailable: %s", dependency, type(exc).__name__)
    return unavailable_error(dependency)


class OutageGuard:
    """ASGI middleware answering 503 for an outage exception raised anywhere below it.

    A middleware rather than an exception handler because the driver's exception often arrives wrapped (an
    action's failure raised ``from`` it): handlers match the outermost class only, this looks down the chain.
    Anything else goes on to the catch-all 500 handler unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            err = as_api_error(exc)
            if err is None or started:
                raise
            await error_response(err)(scope, receive, send)


def redis_check(url: str, timeout_s: float = 1.0) -> Callable[[], bool]:
    """A readiness check for ``/readyz``: True when Redis answers a PING within ``timeout_s`` (no retries, so an
    outage shows at once and the probe never holds the event loop long)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )

    def check() -> bool:
        return bool(client.ping())

    return check
