"""Library DEBUG lines that dump whole payloads have them withheld: the WebSocket frames uvicorn logs (a real
uvicorn server and a real WebSocket client) and rasa-sdk's ignored events (the real executor)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from demo_project import serve, stop
from fastapi import FastAPI, WebSocket
from privacy_helpers import ID_NUMBER, NAME, PHONE

from assistant.log_masking import PersonalDataFilter

SAID = json.dumps({"message": f"我叫{NAME}，身份证{ID_NUMBER}，电话{PHONE}"}, ensure_ascii=False)


Listen = Callable[[str], None]


@pytest.fixture()
def captured() -> Iterator[tuple[io.StringIO, Listen]]:
    """A stream and ``listen(logger_name)``: that logger at DEBUG into the stream, through the masking filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PersonalDataFilter())
    touched: list[logging.Logger] = []

    def listen(name: str) -> None:
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        touched.append(lg)

    yield stream, listen
    for lg in touched:
        lg.removeHandler(handler)
        lg.setLevel(logging.NOTSET)


def test_websocket_frames_logged_by_uvicorn_keep_only_their_size(captured: tuple[io.StringIO, Listen]) -> None:
    from websockets.sync.client import connect

    stream, listen = captured
    app = FastAPI()

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        text = await ws.receive_text()
        await ws.send_text(text)
        await ws.close()

    live = serve(app)
    try:
        listen("uvicorn.error")  # the logger uvicorn hands to websockets
        with connect(live.url.replace("http", "ws") + "/ws") as client:
            client.send(SAID)
            assert client.recv() == SAID
    finally:
        stop(live)
    logged = stream.getvalue()
    assert "TEXT [payload withheld," in logged, logged  # the frame lines were there, without their content
    for secret in (NAME, ID_NUMBER, PHONE, ID_NUMBER[6:14], PHONE[3:]):
        assert secret not in logged


def test_rasa_sdk_ignored_events_are_not_dumped(captured: tuple[io.StringIO, Listen]) -> None:
    from rasa_sdk.executor import ActionExecutor

    stream, listen = captured
    listen("rasa_sdk.executor")
    valid = ActionExecutor.validate_events([{"name": "applicant_name", "value": NAME}, object()], "validate_form")
    assert valid == []
    logged = stream.getvalue()
    assert logged.count("Contents of ignored event: [withheld]") == 2, logged
    assert NAME not in logged
