"""WeChat Official Account channel: Tencent's sample vectors byte for byte, signatures, hostile XML, message
types, exactly-once delivery across restarts, and the slow path through a local fake customer-service API."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from server_harness import HIGH_LIMITS, WECHAT_TOKEN, LiveServer, assert_error_body, serve, stop
from wechatpy.crypto import WeChatCrypto

from assistant.app import create_app
from assistant.server_config import ServerConfig
from connectors.wechat_api import CustomerServiceClient

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "wechat" / "vectors.json").read_text(encoding="utf-8"))
MP = VECTORS["official_account_mp"]
GH = "gh_10f6c3c3ac5a"
# Tencent's samples carry 2014 timestamps: the replay window is off where they are replayed
SAFE = {"token": MP["token"], "appid": MP["appid"], "encoding_aes_key": MP["encoding_aes_key"], "mode": "safe",
        "replay_window_s": None}


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def query(token: str = WECHAT_TOKEN, timestamp: str | None = None, nonce: str = "n0nce") -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}


def text_xml(openid: str, content: str, msg_id: str | None = None, msg_type: str = "text", **extra: str) -> str:
    fields = {"ToUserName": GH, "FromUserName": openid, "CreateTime": str(int(time.time())), "MsgType": msg_type}
    if msg_type == "text":
        fields["Content"] = content
    fields.update(extra)
    if msg_id is not None:
        fields["MsgId"] = msg_id
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    return f"<xml>{inner}</xml>"


def reply_fields(xml: str | bytes) -> dict[str, str]:
    return {child.tag: child.text or "" for child in SafeET.fromstring(xml)}


def wechat_app(runtime: Any, **settings: Any) -> FastAPI:
    return create_app(runtime, ServerConfig(**HIGH_LIMITS), {"wechat": {"token": WECHAT_TOKEN, **settings}})


def user_events(runtime: Any, conversation_id: str) -> list[Any]:
    import asyncio

    tracker = asyncio.run(runtime.agent.tracker(conversation_id))
    return [e for e in tracker.events if type(e).__name__ == "UserUttered"]


def bot_events(runtime: Any, conversation_id: str) -> list[Any]:
    import asyncio

    tracker = asyncio.run(runtime.agent.tracker(conversation_id))
    return [e for e in tracker.events if type(e).__name__ == "BotUttered"]


def openid() -> str:
    return "o" + uuid.uuid4().hex[:27]


# ---- Tencent's vectors ---------------------------------------------------------------------------------
def test_url_verification_echoes_byte_for_byte(client: TestClient) -> None:
    check = MP["plain_mode_url_check"]
    params = {k: check[k] for k in ("signature", "timestamp", "nonce", "echostr")}
    resp = client.get("/webhooks/wechat", params=params)
    assert resp.status_code == 200 and resp.content == check["echostr"].encode()
    bad = client.get("/webhooks/wechat", params={**params, "signature": "0" * 40})
    assert bad.status_code == 403
    assert_error_body(bad.json())


def safe_query(vector: dict[str, Any] = MP) -> dict[str, str]:
    return {
        "signature": vector["plain_mode_url_check"]["signature"],
        "timestamp": vector["timestamp"],
        "nonce": vector["nonce"],
        "encrypt_type": "aes",
        "msg_signature": vector["msg_signature"],
    }


def test_safe_mode_sample_decrypts_to_the_published_fields(runtime: Any) -> None:
    app = wechat_app(runtime, **{**SAFE, "token": MP["token"]})
    channel = app.state.channels["wechat"]
    fields, encrypted = channel._decode(MP["post_body_xml"].encode(), safe_query())
    assert encrypted is True
    assert fields == MP["expected_plain_fields"]


def test_safe_mode_sample_gets_an_encrypted_reply_that_decrypts(runtime: Any) -> None:
    app = wechat_app(runtime, **SAFE)
    with TestClient(app) as c:
        resp = c.post("/webhooks/wechat", params=safe_query(), content=MP["post_body_xml"].encode())
    assert resp.status_code == 200
    outer = reply_fields(resp.content)
    assert set(outer) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    crypto = WeChatCrypto(MP["token"], MP["encoding_aes_key"], MP["appid"])
    inner = reply_fields(crypto.decrypt_message(resp.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]))
    assert inner["ToUserName"] == MP["expected_plain_fields"]["FromUserName"]
    assert inner["FromUserName"] == GH and inner["MsgType"] == "text" and inner["Content"]


def encrypted_post(crypto: WeChatCrypto, token: str, xml: str, nonce: str = "4242") -> tuple[dict[str, str], bytes]:
    ts = str(int(time.time()))
    envelope = reply_fields(crypto.encrypt_message(xml, nonce, ts))
    q = {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
         "msg_signature": envelope["MsgSignature"]}
    body = f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName><Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    return q, body.encode()


def test_safe_mode_text_message_round_trip(runtime: Any) -> None:
    crypto = WeChatCrypto(MP["token"], MP["encoding_aes_key"], MP["appid"])
    user = openid()
    q, body = encrypted_post(crypto, MP["token"], text_xml(user, "你好", uuid.uuid4().hex[:16]))
    with TestClient(wechat_app(runtime, **SAFE)) as c:
        resp = c.post("/webhooks/wechat", params=q, content=body)
        # safe mode refuses plain messages
        plain = c.post("/webhooks/wechat", params=query(MP["token"]), content=text_xml(user, "你好", "1").encode())
    assert resp.status_code == 200
    outer = reply_fields(resp.content)
    inner = reply_fields(crypto.decrypt_message(resp.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]))
    assert inner["ToUserName"] == user and "您好" in inner["Content"]
    assert plain.status_code == 403


def test_wrong_appid_and_truncated_ciphertext_are_4xx(runtime: Any) -> None:
    other = WeChatCrypto(MP["token"], MP["encoding_aes_key"], "wx0000000000000000")  # same key, other account
    user = openid()
    q_wrong, body_wrong = encrypted_post(other, MP["token"], text_xml(user, "你好", uuid.uuid4().hex[:16]))
    # a correctly signed but truncated ciphertext: not a whole number of AES blocks
    envelope = reply_fields(WeChatCrypto(MP["token"], MP["encoding_aes_key"], MP["appid"]).encrypt_message(
        text_xml(user, "你好", uuid.uuid4().hex[:16]), "77", "1409735669"))
    cut = envelope["Encrypt"][:-7]
    q_cut = {"signature": sign(MP["token"], "1409735669", "77"), "timestamp": "1409735669", "nonce": "77",
             "encrypt_type": "aes", "msg_signature": sign(MP["token"], "1409735669", "77", cut)}
    body_cut = f"<xml><Encrypt><![CDATA[{cut}]]></Encrypt></xml>".encode()
    # block-aligned truncation decrypts to garbage whose trailing AppId cannot match
    cut16 = envelope["Encrypt"][: (len(envelope["Encrypt"]) // 2 // 4) * 4]
    q_cut16 = {**q_cut, "msg_signature": sign(MP["token"], "1409735669", "77", cut16)}
    body_cut16 = f"<xml><Encrypt><![CDATA[{cut16}]]></Encrypt></xml>".encode()
    with TestClient(wechat_app(runtime, **SAFE)) as c:
        for q, body in ((q_wrong, body_wrong), (q_cut, body_cut), (q_cut16, body_cut16)):
            resp = c.post("/webhooks/wechat", params=q, content=body)
            assert 400 <= resp.status_code < 500, resp.text
            assert_error_body(resp.json())
    assert user_events(runtime, f"wechat:{user}") == []


def test_tampered_signatures_get_403_and_the_log_has_no_body(client: TestClient, runtime: Any, caplog: pytest.LogCaptureFixture) -> None:
    user = openid()
    secret_text = "我的身份证110101199003077571"
    body = text_xml(user, secret_text, uuid.uuid4().hex[:16]).encode()
    q = query()
    tampered = [
        {**q, "signature": q["signature"][:-1] + ("0" if q["signature"][-1] != "0" else "1")},
        {**q, "timestamp": str(int(q["timestamp"]) + 1)},
        {**q, "nonce": "other"},
        {k: v for k, v in q.items() if k != "signature"},
    ]
    with caplog.at_level(logging.DEBUG):
        for params in tampered:
            resp = client.post("/webhooks/wechat", params=params, content=body)
            assert resp.status_code == 403
            assert_error_body(resp.json())
    assert "bad signature" in caplog.text
    assert "110101199003077571" not in caplog.text and "身份证" not in caplog.text and user not in caplog.text
    assert user_events(runtime, f"wechat:{user}") == []


@pytest.mark.parametrize(
    "xml",
    [
        # billion laughs
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        "<xml><ToUserName>gh</ToUserName><FromUserName>{user}</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>{msg}</MsgId></xml>",
        # external entity (XXE)
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        "<xml><ToUserName>gh</ToUserName><FromUserName>{user}</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>{msg}</MsgId></xml>",
        # a DTD alone
        '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/dtd"><xml><FromUserName>{user}</FromUserName><MsgId>{msg}</MsgId></xml>',
        "<xml><Content>unclosed",
        "not xml at all",
    ],
)
def test_hostile_xml_is_rejected_without_expansion(client: TestClient, runtime: Any, xml: str) -> None:
    user = openid()
    resp = client.post("/webhooks/wechat", params=query(), content=xml.format(user=user, msg=uuid.uuid4().hex[:16]))
    assert resp.status_code == 400
    assert_error_body(resp.json())
    assert "lollol" not in resp.text and "root:" not in resp.text
    assert user_events(runtime, f"wechat:{user}") == []


# ---- message types ----------------------------------------------------------------------------------------
def post_plain(client: TestClient, xml: str) -> Any:
    return client.post("/webhooks/wechat", params=query(), content=xml.encode())


def test_text_message_gets_a_passive_xml_reply(client: TestClient) -> None:
    user = openid()
    resp = post_plain(client, text_xml(user, "你好", uuid.uuid4().hex[:16]))
    assert resp.status_code == 200 and "xml" in resp.headers["content-type"]
    fields = reply_fields(resp.content)
    assert (fields["ToUserName"], fields["FromUserName"], fields["MsgType"]) == (user, GH, "text")
    assert "您好" in fields["Content"]


def test_voice_with_recognition_is_text_and_other_types_are_polite(client: TestClient, runtime: Any) -> None:
    user = openid()
    voice = post_plain(client, text_xml(user, "", uuid.uuid4().hex[:16], "voice", MediaId="m1", Format="amr", Recognition="你好！"))
    assert "您好" in reply_fields(voice.content)["Content"]
    settings = runtime.config.channels["wechat"]
    unsupported = "抱歉，我暂时只能看懂文字和语音消息"
    for kind, extra in (
        ("image", {"PicUrl": "http://example.invalid/a.jpg", "MediaId": "m2"}),
        ("location", {"Location_X": "25.04", "Location_Y": "102.71", "Scale": "15", "Label": "云州"}),
        ("voice", {"MediaId": "m3", "Format": "amr"}),  # no Recognition: nothing to understand
        ("video", {"MediaId": "m4"}),
    ):
        resp = post_plain(client, text_xml(user, "", uuid.uuid4().hex[:16], kind, **extra))
        assert unsupported in reply_fields(resp.content)["Content"], (kind, settings)
    # only the recognised voice reached the engine
    assert [e.text for e in user_events(runtime, f"wechat:{user}")] == ["你好！"]


def test_subscribe_gets_the_welcome_and_other_events_success(client: TestClient) -> None:
    user = openid()
    resp = post_plain(client, text_xml(user, "", None, "event", Event="subscribe"))
    assert "欢迎关注" in reply_fields(resp.content)["Content"]
    resp = post_plain(client, text_xml(openid(), "", None, "event", Event="unsubscribe"))
    assert resp.status_code == 200 and resp.text == "success"


def test_duplicate_msgid_three_deliveries_processed_once_also_after_restart(client: TestClient, runtime: Any) -> None:
    user = openid()
    xml = text_xml(user, "谢谢", uuid.uuid4().hex[:16])
    replies = [post_plain(client, xml) for _ in range(3)]
    assert all(r.status_code == 200 for r in replies)
    contents = [reply_fields(r.content)["Content"] for r in replies]
    assert contents[0] and contents == [contents[0]] * 3  # a retry gets the answer WeChat may have missed
    assert len(user_events(runtime, f"wechat:{user}")) == 1
    # a restarted server (new app, same database) still knows the message
    with TestClient(wechat_app(runtime)) as restarted:
        again = post_plain(restarted, xml)
    assert again.status_code == 200
    assert len(user_events(runtime, f"wechat:{user}")) == 1
    # events are deduplicated by sender and time
    event = text_xml(user, "", None, "event", Event="subscribe")
    first = post_plain(client, event)
    second = post_plain(client, event)
    assert "欢迎关注" in reply_fields(first.content)["Content"]
    assert second.status_code == 200


def test_a_message_claimed_by_a_replica_that_died_is_processed_on_the_retry(client: TestClient, runtime: Any) -> None:
    """The dedupe key was taken (by a replica killed before it stored the message); WeChat's retry reaching another
    replica must still be answered, once."""
    from connectors.dedupe import SqlDeduplicator
    from connectors.wechat import dedupe_key

    user = openid()
    msg_id = uuid.uuid4().hex[:16]
    xml = text_xml(user, "你好", msg_id)
    assert SqlDeduplicator(runtime.database_url).claim(dedupe_key({"MsgId": msg_id}))
    retry = post_plain(client, xml)
    assert retry.status_code == 200 and reply_fields(retry.content)["Content"]
    assert len(user_events(runtime, f"wechat:{user}")) == 1
    again = post_plain(client, xml)
    assert reply_fields(again.content)["Content"] == reply_fields(retry.content)["Content"]
    assert len(user_events(runtime, f"wechat:{user}")) == 1


# ---- the slow path: the customer-service API at a local fake WeChat -------------------------------------
@dataclass
class FakeWeChat:
    appid: str
    secret: str
    expire_first_with: int | None = None
    tokens_issued: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        api = FastAPI()

        @api.get("/cgi-bin/token")
        async def token(grant_type: str, appid: str, secret: str) -> dict[str, Any]:
            if (grant_type, appid, secret) != ("client_credential", self.appid, self.secret):
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            with self.lock:
                value = f"tok-{len(self.tokens_issued) + 1}-{uuid.uuid4().hex[:8]}"
                self.tokens_issued.append(value)
            return {"access_token": value, "expires_in": 7200}

        @api.post("/cgi-bin/message/custom/send")
        async def send(access_token: str, request: Request) -> dict[str, Any]:
            with self.lock:
                if access_token not in self.tokens_issued:
                    self.rejected.append(40001)
                    return {"errcode": 40001, "errmsg": "invalid credential"}
                if self.expire_first_with is not None and access_token == self.tokens_issued[0]:
                    self.rejected.append(self.expire_first_with)
                    return {"errcode": self.expire_first_with, "errmsg": "access_token expired"}
                self.sent.append(await request.json())
            return {"errcode": 0, "errmsg": "ok"}

        return api


@pytest.fixture()
def fake_wechat() -> Iterator[tuple[FakeWeChat, LiveServer]]:
    fake = FakeWeChat("wxfakeappid00001", "fake-secret", expire_first_with=42001)
    live = serve(fake.app())
    try:
        yield fake, live
    finally:
        stop(live)


def test_slow_turn_answers_success_then_customer_service_message(runtime: Any, fake_wechat: tuple[FakeWeChat, LiveServer]) -> None:
    fake, live = fake_wechat
    app = wechat_app(runtime, appid=fake.appid, secret=fake.secret, api_base_url=live.url, passive_timeout_s=0.005)
    user = openid()
    # a knowledge question searches the index off the event loop: far slower than 5 ms
    xml = text_xml(user, "市民中心在哪里，怎么坐地铁去", uuid.uuid4().hex[:16])
    with TestClient(app) as c:
        started = time.monotonic()
        resp = post_plain(c, xml)
        assert resp.status_code == 200 and resp.text == "success"
        assert time.monotonic() - started < 2.0
        deadline = time.monotonic() + 20
        while not fake.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        # WeChat's retry of the same message while the turn runs is not processed again
        assert post_plain(c, xml).text == "success"
    assert len(fake.sent) == 1, fake.sent
    message = fake.sent[0]
    assert message["touser"] == user and message["msgtype"] == "text"
    # what was delivered is the turn's answer as stored in the conversation
    bot_texts = [e.text for e in bot_events(runtime, f"wechat:{user}")]
    assert bot_texts and all(t in message["text"]["content"] for t in bot_texts if t)
    # the first token was expired (42001): refreshed once, then delivered with the new one
    assert fake.rejected == [42001] and len(fake.tokens_issued) == 2
    assert len(user_events(runtime, f"wechat:{user}")) == 1


@pytest.mark.parametrize("errcode", [40001, 42001])
def test_customer_service_client_refreshes_the_token(fake_wechat: tuple[FakeWeChat, LiveServer], errcode: int) -> None:
    import asyncio

    fake, live = fake_wechat
    fake.expire_first_with = errcode

    async def run() -> tuple[Any, Any, Any]:
        api = CustomerServiceClient(fake.appid, fake.secret, live.url)
        try:
            first = await api.send_text("o-user", "您好")
            second = await api.send_text("o-user", "再次问候")  # the refreshed token is cached
            wrong = CustomerServiceClient(fake.appid, "wrong-secret", live.url)
            refused = await wrong.send_text("o-user", "x")
            await wrong.aclose()
            return first, second, refused
        finally:
            await api.aclose()

    first, second, refused = asyncio.run(run())
    assert first.delivered and second.delivered
    assert not refused.delivered
    assert fake.rejected == [errcode] and len(fake.tokens_issued) == 2
    assert [m["text"]["content"] for m in fake.sent] == ["您好", "再次问候"]


def test_a_number_picks_the_numbered_choice_the_citizen_was_shown(client: TestClient, runtime: Any) -> None:
    """WeChat has no buttons: the last message's buttons are numbered, and "1" (or "第一个", "１") picks that one."""
    user = openid()
    shown = reply_fields(post_plain(client, text_xml(user, "社保卡丢了咋办", uuid.uuid4().hex[:16])).content)["Content"]
    assert "1. 现在预约" in shown and "2. 暂时不用" in shown, shown
    started = reply_fields(post_plain(client, text_xml(user, "１", uuid.uuid4().hex[:16])).content)["Content"]
    assert "社保卡挂失" in started and "姓名" in started, started
    picked = user_events(runtime, f"wechat:{user}")[-1]
    assert picked.text == "/affirm" and picked.metadata["typed"] == "１"
    # a number nothing was offered for stays what it is: an answer (here, not a valid name)
    reply = reply_fields(post_plain(client, text_xml(user, "3", uuid.uuid4().hex[:16])).content)["Content"]
    assert user_events(runtime, f"wechat:{user}")[-1].text == "3" and "姓名" in reply, reply


def test_only_the_last_list_of_a_turn_is_numbered() -> None:
    from assistant.agent import BotReply
    from assistant.domain import Button
    from connectors.wechat import render_text

    text = render_text([
        BotReply("您是不是想问：", (Button("过期身份证还能办事吗", "过期身份证还能办事吗"), Button("身份证换领", "身份证换领"))),
        BotReply("需要现在帮您在线预约办理吗？", (Button("现在预约", "/affirm"), Button("暂时不用", "/deny"))),
    ])
    assert "· 过期身份证还能办事吗\n· 身份证换领" in text and "1. 现在预约\n2. 暂时不用" in text
