"""The WeChat Official Account endpoint under attack: XXE (a local file and a local URL), billion laughs and
quadratic blow-up, 10 MB bodies, invalid UTF-8 and unknown encodings, wrong and missing signatures, replays
(the same MsgId; an old timestamp outside the replay window), and garbage in safe (encrypted) mode.

Everything not from WeChat is refused with a bilingual 4xx before the engine sees it; nothing is expanded or
fetched; the refusals are fast (parsing is bounded: the billion laughs would be 3 GB expanded). A genuine message
is answered within WeChat's 5 seconds, with XML or the protocol's "success" meaning "no reply".
"""

from __future__ import annotations

import base64
import logging
import os
import select
import socket
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

import defusedxml.ElementTree as SafeET
import pytest
from demo_project import LiveServer
from fastapi.testclient import TestClient
from hostile_helpers import WECHAT_TOKEN, assert_error_body, sign, user_texts, wechat_query
from wechatpy.crypto import WeChatCrypto

from assistant.app import create_app
from assistant.server_config import ServerConfig

GH = "gh_hostile0001"
APPID = "wxhostile00000001"
AES_KEY = base64.b64encode(b"hostile-suite-aes-key-32-bytes!!").decode().rstrip("=")  # 43 characters
PASSWD_MARKERS = ("root:x:0:0", "/bin/bash", "/usr/sbin/nologin", "daemon:")


def openid() -> str:
    return "o" + uuid.uuid4().hex[:27]


def text_xml(user: str, content: str, msg_id: str | None = None, create_time: int | None = None) -> str:
    msg_id = msg_id or str(uuid.uuid4().int % 10**18)
    return (f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def post(client: TestClient, body: bytes | str, params: dict[str, str] | None = None, **kw: Any) -> Any:
    content = body.encode("utf-8") if isinstance(body, str) else body
    return client.post("/webhooks/wechat", params=wechat_query() if params is None else params, content=content, **kw)


def assert_refused(resp: Any, *statuses: int) -> None:
    assert resp.status_code in (statuses or (400,)), (resp.status_code, resp.text[:300])
    assert_error_body(resp.json())
    assert not any(m in resp.text for m in PASSWD_MARKERS), resp.text


def reply_content(resp: Any) -> str:
    assert resp.status_code == 200 and "xml" in resp.headers["content-type"], (resp.status_code, resp.text[:300])
    return {c.tag: c.text or "" for c in SafeET.fromstring(resp.content)}["Content"]


# ---- a local URL an external entity could point at: it records every request it gets ---------------------
class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits.append(self.path)
        body = b'<!ENTITY leak "LEAKED-FROM-LOCAL-URL">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local_url() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def xxe_payloads(url: str, user: str) -> dict[str, str]:
    fields = f"<ToUserName>{GH}</ToUserName><FromUserName>{user}</FromUserName><CreateTime>1</CreateTime>"
    msg = f"<MsgType>text</MsgType><MsgId>{uuid.uuid4().int % 10**18}</MsgId>"
    return {
        "file entity": f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                       f"<xml>{fields}{msg}<Content>&xxe;</Content></xml>",
        "url entity": f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "{url}/entity">]>'
                      f"<xml>{fields}{msg}<Content>&xxe;</Content></xml>",
        "parameter entity": f'<!DOCTYPE xml [<!ENTITY % pe SYSTEM "{url}/parameter"> %pe;]>'
                            f"<xml>{fields}{msg}<Content>&leak;</Content></xml>",
        "external dtd": f'<!DOCTYPE xml SYSTEM "{url}/dtd"><xml>{fields}{msg}<Content>&leak;</Content></xml>',
        "public id": f'<!DOCTYPE xml PUBLIC "-//X//Y" "{url}/public"><xml>{fields}{msg}<Content>hi</Content></xml>',
        "utf-16 file entity": "",  # filled below: the same attack in another encoding
    }


def test_xxe_to_a_file_and_to_a_local_url_is_refused_and_nothing_is_read(
    client: TestClient, runtime: Any, local_url: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    url, hits = local_url
    user = openid()
    payloads = xxe_payloads(url, user)
    utf16 = payloads.pop("utf-16 file entity") or payloads["file entity"].replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    with caplog.at_level(logging.DEBUG):
        for name, xml in payloads.items():
            resp = post(client, xml)
            assert_refused(resp)
            assert "LEAKED" not in resp.text, name
        assert_refused(post(client, utf16.encode("utf-16")))
        # XInclude needs no DTD; ElementTree never processes it, so it is a message of an unknown type
        xinclude = (f'<xml xmlns:xi="http://www.w3.org/2001/XInclude"><ToUserName>{GH}</ToUserName>'
                    f"<FromUserName>{user}</FromUserName><CreateTime>{int(time.time())}</CreateTime>"
                    f'<MsgType>text</MsgType><Content><xi:include href="file:///etc/passwd" parse="text"/></Content>'
                    f"<MsgId>{uuid.uuid4().int % 10**18}</MsgId></xml>")
        resp = post(client, xinclude)
        assert resp.status_code == 200 and not any(m in resp.text for m in PASSWD_MARKERS)
    assert hits == [], hits  # no entity, DTD or include was ever fetched
    assert not any(m in caplog.text for m in PASSWD_MARKERS) and "LEAKED" not in caplog.text
    # only the XInclude message reached the engine, as the empty text it is
    assert all("root:" not in t for t in user_texts(runtime, f"wechat:{user}"))


def test_billion_laughs_and_quadratic_blowup_are_refused_fast_in_flat_memory(client: TestClient) -> None:
    levels = ['<!ENTITY lol0 "lollollollollollollollollollol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    laughs = (f'<?xml version="1.0"?><!DOCTYPE xml [{"".join(levels)}]>'
              f"<xml><FromUserName>{openid()}</FromUserName><MsgType>text</MsgType><Content>&lol9;</Content></xml>")
    # one 30 KB entity referenced 1,000 times: 30 MB expanded, no nesting needed
    big = "A" * 30_000
    quadratic = (f'<!DOCTYPE xml [<!ENTITY a "{big}">]><xml><FromUserName>{openid()}</FromUserName>'
                 f"<MsgType>text</MsgType><Content>{'&a;' * 1000}</Content></xml>")
    assert len(quadratic.encode()) < 64 * 1024  # under the channel's own body limit: the parser must refuse it
    post(client, "<xml/>")  # warm the route
    for xml in (laughs, quadratic):
        tracemalloc.start()
        started = time.perf_counter()
        resp = post(client, xml)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert_refused(resp)
        assert "lollol" not in resp.text and big[:100] not in resp.text
        # expanded, these are gigabytes and minutes; refused, they cost what parsing the few KB costs
        assert elapsed < 2.0, elapsed
        assert peak < 8 * 1024 * 1024, peak


def test_ten_megabyte_bodies_are_refused(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    ten_mb = b"<xml><Content>" + b"A" * (10 * 1024 * 1024) + b"</Content></xml>"
    started = time.perf_counter()
    with caplog.at_level(logging.INFO):
        assert_refused(post(client, ten_mb), 413)  # by its Content-Length, before a byte is read

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b"B" * (1024 * 1024)

        # no Content-Length (chunked): counted while it streams
        assert_refused(client.post("/webhooks/wechat", params=wechat_query(), content=chunks()), 413)
        # 100 KB with a valid signature: under the server's limit, over what WeChat ever sends
        assert_refused(post(client, text_xml(openid(), "办" * 34_000)), 413)
    assert time.perf_counter() - started < 10
    # a refused upload is not a server error: nothing logged at ERROR (an attacker could fill the logs)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-2000:]


def test_a_streamed_ten_megabytes_are_refused_before_the_upload_ends(live_server: LiveServer) -> None:
    """Over a real socket (uvicorn): the 413 arrives while the client is still sending."""
    address = urlsplit(live_server.url)
    target = "/webhooks/wechat?" + urlencode(wechat_query())
    chunk = b"A" * 65536
    sent, response = 0, b""
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: text/xml\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        while sent < 10 * 1024 * 1024:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                break
        response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 413"), response[:300]
    assert sent < 10 * 1024 * 1024, sent
    assert b"payload_too_large" in response


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>gh</ToUserName><Content>\xff\xfe\xfa\xc3\x28</Content></xml>",  # invalid UTF-8
        b"\xef\xbb\xbf\xff<xml/>",  # a UTF-8 BOM, then garbage
        b'<?xml version="1.0" encoding="x-unknown-charset"?><xml><Content>hi</Content></xml>',
        b'<?xml version="1.0" encoding="GB2312"?><xml><Content>\xc4\xe3\xba\xc3</Content></xml>',
        b"<xml><Content>\x00\x01\x02\x1b[31m</Content></xml>",  # control characters XML forbids
        b"<xml><Content>\xed\xa0\x80</Content></xml>",  # a UTF-8-encoded surrogate
        b"<xml><Content>a</Content>",  # unclosed
        b"",
        b"{\"json\": true}",
    ],
)
def test_undecodable_bodies_are_400_never_5xx(client: TestClient, body: bytes) -> None:
    resp = post(client, body)
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    assert_error_body(resp.json())


def test_wrong_and_missing_signatures_are_403_and_never_processed(
    client: TestClient, runtime: Any, caplog: pytest.LogCaptureFixture
) -> None:
    user = openid()
    xml = text_xml(user, "我的手机号13912345678")
    good = wechat_query()
    forged = [
        {},  # no query at all
        {"timestamp": good["timestamp"], "nonce": good["nonce"]},
        {"signature": good["signature"], "nonce": good["nonce"]},
        {"signature": good["signature"], "timestamp": good["timestamp"]},
        {**good, "signature": ""},
        {**good, "signature": good["signature"].upper()},
        {**good, "signature": sign("another-token", good["timestamp"], good["nonce"])},
        {**good, "signature": good["signature"] + "00"},
        {**good, "signature": "%FF\u00ff"},
        {**good, "nonce": good["nonce"] + "x"},
    ]
    with caplog.at_level(logging.DEBUG):
        for params in forged:
            assert_refused(post(client, xml, params=params), 403)
        # a signature of this account with invalid UTF-8 in the raw query string
        raw = client.post(f"/webhooks/wechat?signature=%ff%fe&timestamp={good['timestamp']}&nonce=%c3%28",
                          content=xml.encode())
        assert_refused(raw, 403)
        # the URL check (GET) refuses the same way and echoes nothing
        check = client.get("/webhooks/wechat", params={**good, "signature": "0" * 40, "echostr": "<script>x</script>"})
        assert_refused(check, 403)
        assert "<script>" not in check.text
    assert user_texts(runtime, f"wechat:{user}") == []
    assert "13912345678" not in caplog.text and user not in caplog.text


def test_a_replayed_message_is_processed_once_and_old_timestamps_are_refused(client: TestClient, runtime: Any) -> None:
    user = openid()
    xml = text_xml(user, "你好")
    first, again = post(client, xml), post(client, xml, params=wechat_query(nonce="other-nonce"))
    assert reply_content(first) and reply_content(again) == reply_content(first)  # WeChat's retry, answered alike
    assert user_texts(runtime, f"wechat:{user}") == ["你好"]
    # a query string captured an hour ago, replayed with a new message: the signature is right, the time is not
    window = runtime.config.channels["wechat"].get("replay_window_s", 300)
    late = text_xml(user, "换个问题", create_time=int(time.time()) - 3600)
    for ts in (str(int(time.time()) - 3600), str(int(time.time()) + 3600), "１２３", " 17", "9" * 40):
        resp = post(client, late, params=wechat_query(timestamp=ts))
        assert_refused(resp, 403)
    assert window is not None and window < 3600
    assert user_texts(runtime, f"wechat:{user}") == ["你好"]


@pytest.fixture(scope="module")
def safe(runtime: Any) -> Iterator[TestClient]:
    settings = {"token": WECHAT_TOKEN, "appid": APPID, "encoding_aes_key": AES_KEY, "mode": "safe"}
    app = create_app(runtime, ServerConfig(rate_per_minute=1_000_000, rate_burst=100_000), {"wechat": settings})
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def encrypted(inner: str, crypto: WeChatCrypto | None = None, nonce: str = "4242") -> tuple[dict[str, str], bytes]:
    ts = str(int(time.time()))
    envelope = {c.tag: c.text or "" for c in SafeET.fromstring(
        (crypto or WeChatCrypto(WECHAT_TOKEN, AES_KEY, APPID)).encrypt_message(inner, nonce, ts))}
    return sealed(envelope["Encrypt"], ts, nonce)


def sealed(cipher: str, ts: str | None = None, nonce: str = "4242") -> tuple[dict[str, str], bytes]:
    """A correctly signed safe-mode envelope around ``cipher``, whatever it holds."""
    ts = ts or str(int(time.time()))
    q = {"signature": sign(WECHAT_TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
         "msg_signature": sign(WECHAT_TOKEN, ts, nonce, cipher)}
    return q, f"<xml><ToUserName><![CDATA[{GH}]]></ToUserName><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>".encode()


def test_safe_mode_garbage_is_refused(safe: TestClient, runtime: Any, local_url: tuple[str, list[str]]) -> None:
    url, hits = local_url
    user = openid()
    # the genuine article works, so the refusals below are about the garbage
    q, body = encrypted(text_xml(user, "你好"))
    assert "您好" in _decrypt_reply(safe.post("/webhooks/wechat", params=q, content=body))
    random_cipher = base64.b64encode(os.urandom(64)).decode()
    cases = {
        "not base64": sealed("!!!not base64 at all!!!"),
        "random blocks": sealed(random_cipher),
        "not a block multiple": sealed(base64.b64encode(os.urandom(37)).decode()),
        "empty": sealed(""),
        "huge length prefix": sealed(_raw_cipher(b"\x00" * 16 + b"\xff\xff\xff\xff" + b"<xml/>" + APPID.encode())),
        "inner not xml": encrypted("this is not xml"),
        "inner xxe": encrypted(f'<!DOCTYPE xml [<!ENTITY x SYSTEM "{url}/inner">]><xml><Content>&x;</Content></xml>'),
        "inner laughs": encrypted('<!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><c>&b;</c></xml>'),
        "other account": encrypted(text_xml(user, "你好"), WeChatCrypto(WECHAT_TOKEN, AES_KEY, "wx0000000000000000")),
    }
    for name, (params, payload) in cases.items():
        resp = safe.post("/webhooks/wechat", params=params, content=payload)
        assert resp.status_code in (400, 403), (name, resp.status_code, resp.text[:200])
        assert_error_body(resp.json())
    # a right envelope with the message signature of other content, or none; and a plain message in safe mode
    q, body = encrypted(text_xml(user, "你好"))
    for params in ({**q, "msg_signature": "0" * 40}, {k: v for k, v in q.items() if k != "msg_signature"}):
        assert_refused(safe.post("/webhooks/wechat", params=params, content=body), 403)
    assert_refused(safe.post("/webhooks/wechat", params=wechat_query(), content=text_xml(user, "明文").encode()), 403)
    assert hits == []
    assert user_texts(runtime, f"wechat:{user}") == ["你好"]


def _raw_cipher(plain: bytes) -> str:
    """``plain`` AES-encrypted with the account's key and IV but no valid padding or framing."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(AES_KEY + "=")
    padded = plain + b"\x00" * (-len(plain) % 16)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def _decrypt_reply(resp: Any) -> str:
    assert resp.status_code == 200, resp.text[:300]
    outer = {c.tag: c.text or "" for c in SafeET.fromstring(resp.content)}
    inner = WeChatCrypto(WECHAT_TOKEN, AES_KEY, APPID).decrypt_message(
        resp.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
    return {c.tag: c.text or "" for c in SafeET.fromstring(inner)}["Content"]


def test_signed_oddities_are_answered_within_five_seconds(client: TestClient, runtime: Any) -> None:
    """Messages WeChat could send but a careless parser would trip on: each gets XML or "success" in time."""
    user = openid()
    now = int(time.time())
    odd = [
        text_xml(user, "办" * 2000),  # WeChat's longest text
        text_xml(user, "<script>alert(1)</script>&lt;b&gt;"),
        f"<xml><FromUserName>{user}</FromUserName><MsgType>text</MsgType><MsgId>{now}1</MsgId></xml>",  # no Content
        f"<xml><MsgType>text</MsgType><Content>你好</Content><MsgId>{now}2</MsgId></xml>",  # no sender
        f"<xml><FromUserName>{user}</FromUserName><MsgType><x>text</x></MsgType><MsgId>{now}3</MsgId></xml>",
        f"<xml><FromUserName>{user}</FromUserName><MsgType>event</MsgType><Event>\u202eebircsbus</Event></xml>",
        f"<xml><FromUserName>{user}</FromUserName><MsgType>text</MsgType><Content>a</Content><Content>b</Content>"
        f"<MsgId>{now}4</MsgId></xml>",
        "<xml>" + "<a>" * 2000 + "</a>" * 2000 + "</xml>",  # deep nesting within 64 KB
    ]
    for xml in odd:
        started = time.perf_counter()
        resp = post(client, xml)
        assert time.perf_counter() - started < 5.0
        assert resp.status_code == 200, (resp.status_code, resp.text[:300], xml[:100])
        assert resp.text == "success" or "xml" in resp.headers["content-type"]
        assert "<script>" not in resp.text  # a passive reply is XML-escaped (CDATA or entities)
