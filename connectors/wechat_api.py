"""WeChat Official Account customer-service message API (客服消息), for replies that miss the 5-second window
and for staff replies. Async httpx; the base URL is configurable so tests point it at a local fake server."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

log = logging.getLogger(__name__)

# errcodes: the token is invalid or expired -> refresh once; outside the 48-hour window -> not deliverable
TOKEN_ERRORS = {40001, 40014, 42001}
OUT_OF_WINDOW = {45015, 45047}


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    errcode: int = 0
    reason: str = ""

    @property
    def outside_window(self) -> bool:
        return self.errcode in OUT_OF_WINDOW


class WeChatApiError(RuntimeError):
    pass


class CustomerServiceClient:
    def __init__(self, appid: str, secret: str, base_url: str = "https://api.weixin.qq.com", timeout_s: float = 5.0) -> None:
        self.appid = appid
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def access_token(self, force: bool = False) -> str:
        async with self._lock:
            # refresh 5 minutes early: a token that expires mid-request costs a retry
            if not force and self._token and time.monotonic() < self._expires_at - 300:
                return self._token
            resp = await self._client.get(
                f"{self.base_url}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )
            data = resp.json()
            if "access_token" not in data:
                raise WeChatApiError(f"access token refused: errcode={data.get('errcode')} {data.get('errmsg', '')}")
            self._token = data["access_token"]
            self._expires_at = time.monotonic() + float(data.get("expires_in", 7200))
            return self._token

    async def send_text(self, openid: str, content: str) -> SendResult:
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        for attempt in range(2):
            try:
                token = await self.access_token(force=attempt > 0)
                resp = await self._client.post(
                    f"{self.base_url}/cgi-bin/message/custom/send", params={"access_token": token}, json=body
                )
                data = resp.json()
            except (httpx.HTTPError, ValueError, WeChatApiError) as err:
                log.warning("wechat customer-service send failed: %s", type(err).__name__)
                return SendResult(False, -1, type(err).__name__)
            code = int(data.get("errcode", 0))
            if code == 0:
                return SendResult(True)
            if code in TOKEN_ERRORS and attempt == 0:
                continue
            return SendResult(False, code, str(data.get("errmsg", "")))
        return SendResult(False, -1, "token refresh failed")

    async def aclose(self) -> None:
        await self._client.aclose()
