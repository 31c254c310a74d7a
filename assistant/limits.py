"""Request guards as plain ASGI middleware: body size, per-client rate, processing time.

They sit in front of every route so no channel has to remember them, and they answer with the same bilingual
error bodies as the rest of the API.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.errors import ApiError, error_for_status


async def _send_error(send: Send, err: ApiError) -> None:
    body = json.dumps(err.body(), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (err.headers or {}).items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Rejects bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int = 1_000_000) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_error(send, error_for_status(413))
                return
        seen = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now and tell the app the client went away: an exception raised here would be
                    # turned into a generic 400 by FastAPI's body parsing, hiding the 413.
                    refused = True
                    if not started:
                        await _send_error(send, error_for_status(413))
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the response; whatever the app answers to the disconnect is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


# a JSON escape of NUL or of a UTF-16 surrogate, or the bytes UTF-8 would use for one (json.loads decodes those)
_UNSTORABLE_HINT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\xed[\xa0-\xbf]")
# no UTF-8 for a lone surrogate; PostgreSQL text columns refuse NUL
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _json_body(scope: Scope) -> bool:
    """Whether FastAPI will parse the request body as JSON (it does when there is no content type, too)."""
    value = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"").split(b";")[0].strip().lower()
    return not value or value == b"application/json" or (value.startswith(b"application/") and value.endswith(b"+json"))


def has_unstorable_text(body: bytes) -> bool:
    """True when a string (key or value) of the JSON ``body`` holds NUL or a UTF-16 surrogate with no partner.

    json.loads accepts ``"\\ud800"`` (a valid pair becomes one character), but such a string can be neither stored
    nor sent back as UTF-8; PostgreSQL refuses NUL in text. Bodies without a hint of either are not decoded here.
    """
    if not _UNSTORABLE_HINT.search(body):
        return False
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False  # not JSON: the route answers that itself
    stack = [data]
    while stack:  # no recursion: the nesting depth is the client's choice
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class JsonTextGuard:
    """Refuses a JSON body with text that cannot be stored (NUL, lone surrogates) with 400, before any route reads it.

    Left in, such a string fails wherever it is first encoded (the database, the response, a log file): a 500 deep
    inside a turn. JSON bodies are read whole here, as FastAPI reads them anyway; ``BodySizeLimit`` outside this
    bounds them. Other bodies (WeChat XML, uploads) stream through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS") or not _json_body(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        last: Message = {"type": "http.request", "body": b"", "more_body": False}
        while True:
            last = await receive()
            if last["type"] != "http.request":
                break  # the client went away: the route sees the disconnect
            chunks.append(last.get("body", b""))
            if not last.get("more_body", False):
                break
        body = b"".join(chunks)
        if last["type"] == "http.request" and has_unstorable_text(body):
            await _send_error(send, ApiError(400, "invalid_text", "文本包含无法保存的字符（NUL 或不成对的代理字符）",
                                             "The text holds characters that cannot be stored (NUL or unpaired surrogates)"))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed or last["type"] != "http.request":
                return await receive() if replayed else last
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds until a token is available."""
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
                self._buckets.clear()
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate_per_s


class RateLimit:
    """Per-client token buckets.

    A client is its X-Session-Id header when present (citizens behind one office NAT do not share a bucket), else
    its peer address. The header is chosen by the client, so the address also has a bucket ``address_factor``
    times larger: rotating session ids cannot lift the limit beyond that.
    """

    def __init__(
        self,
        app: ASGIApp,
        per_minute: int = 120,
        burst: int = 30,
        exempt: tuple[str, ...] = (),
        address_factor: int = 10,
    ) -> None:
        self.app = app
        self.bucket = TokenBucket(per_minute / 60.0, burst)
        self.by_address = TokenBucket(per_minute * address_factor / 60.0, burst * address_factor)
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        session = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-session-id"), None)
        # the client's own bucket first: a request it refuses costs the address nothing, so one session flooding
        # from an office's shared address does not lock out its neighbours
        wait = self.bucket.take("session:" + session[:128] if session is not None else address)
        if wait == 0:
            wait = self.by_address.take(address)
        if wait > 0:
            err = error_for_status(429)
            err.headers = {"Retry-After": str(max(1, int(wait + 0.999)))}
            await _send_error(send, err)
            return
        await self.app(scope, receive, send)


class Timeout:
    """Answers 504 when a request takes longer than ``seconds`` (the work is cancelled, never half-sent)."""

    def __init__(self, app: ASGIApp, seconds: float = 30.0, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), self.seconds)
        except TimeoutError:
            if not started:
                await _send_error(send, error_for_status(504))
