"""WeChat Official Account channel (微信公众号): URL verification, plain/compatible/safe modes, the 5-second rule,
and exactly-once processing of WeChat's retried deliveries.

Untrusted XML is parsed only by defusedxml (no DTDs, no entities); crypto and message objects come from wechatpy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from assistant.agent import UserMessage
from assistant.choices import NUMBERED_CHOICES
from assistant.errors import ApiError
from connectors.dedupe import SqlDeduplicator
from connectors.wechat_api import CustomerServiceClient

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a WeChat push is a few KB; anything larger is not from WeChat


class WeChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(..., min_length=3)
    appid: str = ""
    secret: str = ""
    encoding_aes_key: str | None = Field(None, min_length=43, max_length=43)
    mode: Literal["plain", "compatible", "safe"] = "plain"
    api_base_url: str = "https://api.weixin.qq.com"
    passive_timeout_s: float = Field(4.0, gt=0, lt=5)
    # In plain mode the signature covers token, timestamp and nonce but not the body: a captured query string
    # would sign any body forever. Messages whose timestamp is further than this from our clock are refused
    # (WeChat retries within 15 s); None turns the check off (replaying Tencent's published sample vectors).
    replay_window_s: float | None = Field(300.0, gt=0)
    welcome: str = "您好，欢迎关注云州市政务服务！我可以解答办事政策、帮您预约办理。请直接输入您的问题。"
    unsupported: str = "抱歉，我暂时只能看懂文字和语音消息，请用文字描述您的问题。"


def _forbidden() -> ApiError:
    return ApiError(403, "bad_signature", "签名校验失败", "Signature verification failed")


def parse_xml(body: bytes) -> Element:
    try:
        return SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    # LookupError: an XML declaration naming an encoding Python does not know (encoding="x-nope")
    except (DefusedXmlException, SafeET.ParseError, ValueError, LookupError) as err:
        raise ApiError(400, "bad_xml", "消息格式不正确", "Malformed XML") from err


def dedupe_key(fields: dict[str, str]) -> str:
    if fields.get("MsgId"):
        return f"wx:msg:{fields['MsgId']}"
    return f"wx:evt:{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}"


# stands in ``_answered`` for a message whose answer this replica sends through the customer-service API; a retry
# reaching another replica cannot know that, and may answer passively too (a duplicate beats a lost answer)
_BY_CUSTOMER_SERVICE = "\x00customer-service"


class WeChatChannel:
    name = "wechat"

    def __init__(self, runtime: Any, settings: dict[str, Any]) -> None:
        self.runtime = runtime
        self.settings = WeChatSettings.model_validate(settings)
        s = self.settings
        if s.mode != "plain" and not (s.encoding_aes_key and s.appid):
            raise ValueError("channels.wechat: compatible/safe mode needs encoding_aes_key and appid")
        self.crypto = WeChatCrypto(s.token, s.encoding_aes_key, s.appid) if s.encoding_aes_key else None
        self.api = CustomerServiceClient(s.appid, s.secret, s.api_base_url)
        self.dedupe = SqlDeduplicator(runtime.database_url)
        # replies already given passively, for a retry whose first response WeChat never received
        self._answered: OrderedDict[str, str] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- inbound -------------------------------------------------------------------------------------
    def _decode(self, body: bytes, q: dict[str, str]) -> tuple[dict[str, str], bool]:
        """Verified message fields and whether the reply must be encrypted."""
        try:
            check_signature(self.settings.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            raise _forbidden() from None
        self._check_fresh(q.get("timestamp", ""))
        outer = parse_xml(body)
        encrypt = outer.findtext("Encrypt")
        if encrypt is not None and self.crypto is not None and q.get("encrypt_type") == "aes":
            try:
                inner = self.crypto.decrypt_message(
                    {"Encrypt": encrypt}, q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
                )
            except (InvalidSignatureException, InvalidAppIdException):
                raise _forbidden() from None
            except Exception as err:  # truncated or corrupt ciphertext
                raise ApiError(400, "bad_ciphertext", "消息解密失败", "Could not decrypt the message") from err
            xml = inner if isinstance(inner, bytes) else str(inner).encode("utf-8")
            return self._fields(xml), True
        if self.settings.mode == "safe":
            raise _forbidden()
        return self._fields(body), False

    def _check_fresh(self, timestamp: str) -> None:
        window = self.settings.replay_window_s
        if window is None:
            return
        # ASCII digits only: int() would also take other scripts' digits and surrounding spaces
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or abs(
            time.time() - int(timestamp)
        ) > window:
            raise ApiError(403, "stale_request", "请求已过期，请重新发送", "Request timestamp outside the accepted window")

    def _fields(self, xml: bytes) -> dict[str, str]:
        root = parse_xml(xml)
        return {child.tag: (child.text or "") for child in root}

    async def _process(self, fields: dict[str, str]) -> str | None:
        msg_type = fields.get("MsgType", "").lower()
        openid = fields.get("FromUserName", "")
        if msg_type == "event":
            event = fields.get("Event", "").lower()
            return self.settings.welcome if event == "subscribe" else None
        if msg_type == "text":
            text = fields.get("Content", "")
        elif msg_type == "voice" and fields.get("Recognition"):
            text = fields["Recognition"]
        else:
            return self.settings.unsupported
        replies = await self.runtime.agent.handle(
            UserMessage(conversation_id=f"wechat:{openid}", text=text, channel=self.name, message_id=fields.get("MsgId"),
                        metadata={"openid": openid, NUMBERED_CHOICES: True})
        )
        return render_text(replies)

    def _passive(self, fields: dict[str, str], content: str, encrypt: bool, q: dict[str, str]) -> Response:
        reply = TextReply(source=fields.get("ToUserName", ""), target=fields.get("FromUserName", ""), content=content)
        xml = reply.render()
        if encrypt and self.crypto is not None:
            xml = self.crypto.encrypt_message(xml, q.get("nonce", ""), q.get("timestamp") or str(int(time.time())))
        return Response(xml, media_type="application/xml")

    def _remember(self, key: str, content: str) -> None:
        self._answered[key] = content
        while len(self._answered) > 10_000:
            self._answered.popitem(last=False)

    async def receive(self, body: bytes, q: dict[str, str]) -> Response:
        fields, encrypt = self._decode(body, q)
        key = dedupe_key(fields)
        if not self.dedupe.claim(key):
            earlier = self._answered.get(key)
            if earlier == _BY_CUSTOMER_SERVICE:
                return PlainTextResponse("success")  # the answer goes out through the customer-service API
            if earlier is not None:
                return self._passive(fields, earlier, encrypt, q)
            # WeChat retries only a message it got no answer for. Without an answer here, the replica that claimed
            # it may have died before (or while) handling it: a message with an id goes to the engine, which takes
            # an id once under the conversation's lock and finishes a turn cut off mid-way. Events have no id.
            if not fields.get("MsgId"):
                return PlainTextResponse("success")
        task = asyncio.create_task(self._process(fields))
        done, _ = await asyncio.wait({task}, timeout=self.settings.passive_timeout_s)
        if done:
            try:
                content = task.result()
            except Exception:
                # nothing was answered: let WeChat's retry of this message be processed instead of ignored
                self.dedupe.release(key)
                raise
            if not content:
                return PlainTextResponse("success")
            self._remember(key, content)
            return self._passive(fields, content, encrypt, q)
        # too slow for a passive reply: answer now, deliver through the customer-service API when ready
        self._remember(key, _BY_CUSTOMER_SERVICE)
        follow = asyncio.create_task(self._deliver_later(task, fields.get("FromUserName", "")))
        self._tasks.add(follow)
        follow.add_done_callback(self._tasks.discard)
        return PlainTextResponse("success")

    async def _deliver_later(self, task: asyncio.Task[str | None], openid: str) -> None:
        try:
            content = await task
        except Exception:
            log.exception("wechat turn failed")
            content = "抱歉，系统繁忙，请稍后再试。"
        if content:
            result = await self.api.send_text(openid, content)
            if not result.delivered:
                log.warning("wechat reply not delivered: errcode=%s", result.errcode)

    # ---- routes --------------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        router = APIRouter(tags=["wechat"])

        @router.get("/webhooks/wechat", response_class=PlainTextResponse)
        async def verify(
            signature: str = Query(""), timestamp: str = Query(""), nonce: str = Query(""), echostr: str = Query("")
        ) -> PlainTextResponse:
            try:
                check_signature(self.settings.token, signature, timestamp, nonce)
            except InvalidSignatureException:
                log.warning("wechat url verification: bad signature")
                raise _forbidden() from None
            return PlainTextResponse(echostr)

        # a passive reply is XML; "success" (plain text) tells WeChat there is nothing to show
        @router.post(
            "/webhooks/wechat",
            response_class=PlainTextResponse,
            responses={200: {"content": {"application/xml": {"schema": {"type": "string"}}}}},
        )
        async def inbound(request: Request) -> Response:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise ApiError(413, "payload_too_large", "请求内容过大", "Request body too large")
            q = {k: v for k, v in request.query_params.items()}
            try:
                return await self.receive(body, q)
            except ApiError as err:
                if err.status == 403:
                    log.warning("wechat message rejected: %s", err.code.replace("_", " "))  # never the body
                raise

        return router

    async def send(self, recipient_id: str, replies: Sequence[Any]) -> bool:
        openid = recipient_id.removeprefix("wechat:")
        content = render_text(replies)
        if not content:
            return True
        return (await self.api.send_text(openid, content)).delivered


def render_text(replies: Sequence[Any]) -> str:
    """WeChat shows one text bubble per passive reply: join the turn's messages, citations as source lines and
    buttons as choices (WeChat has no quick replies). Only the last message's buttons are numbered: that is what a
    reply "1" picks (``assistant.choices``); buttons above it are listed as suggestions to type."""
    parts: list[str] = []
    numbered = max((i for i, r in enumerate(replies) if r.buttons), default=-1)
    for index, r in enumerate(replies):
        lines = [r.text] if r.text else []
        for i, b in enumerate(r.buttons, 1):
            lines.append(f"{i}. {b.title}" if index == numbered else f"· {b.title}")
        for c in r.citations:
            title = c.get("title", "")
            url = c.get("source_url")
            lines.append(f"来源：{title}" + (f" {url}" if url else ""))
        if lines:
            parts.append("\n".join(lines))
    return "\n\n".join(parts)


def make_channel(runtime: Any, settings: dict[str, Any]) -> WeChatChannel:
    return WeChatChannel(runtime, settings)
