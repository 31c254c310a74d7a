"""Helpers shared by the handoff tests: live servers, the fake WeChat API, logging staff in, WeChat pushes."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from demo_project import LiveServer, stop
from demo_project import serve as serve_live
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

WECHAT_TOKEN = "handofftest"
PASSWORD = "correct-horse-battery"
WINDOW_S = 48 * 3600
# the handoff tests import these from here
__all__ = ["LiveServer", "stop"]


def serve(app: Any) -> LiveServer:
    return serve_live(app, ws="websockets")


# --- a fake WeChat customer-service API -------------------------------------------------------------------
@dataclass
class FakeWeChat:
    last_inbound: dict[str, float] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def citizen_wrote(self, openid: str, at: float | None = None) -> None:
        self.last_inbound[openid] = time.time() if at is None else at

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/cgi-bin/token")
        async def token() -> dict[str, Any]:
            return {"access_token": "fake-token", "expires_in": 7200}

        @app.post("/cgi-bin/message/custom/send")
        async def send(request: Request) -> dict[str, Any]:
            body = await request.json()
            if request.query_params.get("access_token") != "fake-token":
                return {"errcode": 40001, "errmsg": "invalid credential"}
            openid = body.get("touser", "")
            if time.time() - self.last_inbound.get(openid, 0.0) > WINDOW_S:
                self.refused.append(body)
                return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
            self.sent.append(body)
            return {"errcode": 0, "errmsg": "ok"}

        return app


def login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/console/api/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # API calls below authenticate with the bearer token only
    return {"Authorization": f"Bearer {r.json()['token']}"}


def wechat_signature(timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([WECHAT_TOKEN, timestamp, nonce])).encode()).hexdigest()


def wechat_post(client: TestClient, openid: str, text: str, msg_id: int) -> Any:
    ts, nonce = str(int(time.time())), f"n{msg_id}"
    xml = (f"<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
           f"<MsgId>{msg_id}</MsgId></xml>")
    return client.post("/webhooks/wechat", params={"signature": wechat_signature(ts, nonce), "timestamp": ts,
                                                   "nonce": nonce}, content=xml.encode("utf-8"))
