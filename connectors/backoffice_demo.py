"""A tiny back office for the demo and the tests.

It accepts form submissions, hands out ``YZ-YYYYMMDD-NNNN`` reference numbers, honours idempotency keys (the same
key always gets the same reference) and can be told to fail the next N submissions, so retry paths are tested
against a real HTTP service. Run it with ``python -m connectors.backoffice_demo --port 8765``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

_SHANGHAI = ZoneInfo("Asia/Shanghai")


class SubmissionIn(BaseModel):
    conversation_id: str
    form: str
    data: dict[str, Any]


class FailIn(BaseModel):
    times: int = 0
    status: int = 503
    # answer every submission this much later, after recording it: a client that times out and retries must
    # still end up with one application
    delay_s: float = 0.0


@dataclass
class BackOfficeState:
    today: Callable[[], date] = field(
        default_factory=lambda: lambda: datetime.now(UTC).astimezone(_SHANGHAI).date()
    )
    by_key: dict[str, str] = field(default_factory=dict)
    records: dict[str, SubmissionIn] = field(default_factory=dict)
    # which queue each application went to ("" for /submissions itself, "id-card" for /submissions/id-card)
    targets: dict[str, str] = field(default_factory=dict)
    counters: dict[date, int] = field(default_factory=dict)
    fail_remaining: int = 0
    fail_status: int = 503
    delay_s: float = 0.0
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, key: str, submission: SubmissionIn, target: str = "") -> tuple[str, bool]:
        with self.lock:
            if key in self.by_key:
                return self.by_key[key], False
            day = self.today()
            self.counters[day] = self.counters.get(day, 0) + 1
            reference = f"YZ-{day:%Y%m%d}-{self.counters[day]:04d}"
            self.by_key[key] = reference
            self.records[reference] = submission
            self.targets[reference] = target
            return reference, True


def create_backoffice_app(state: BackOfficeState | None = None) -> FastAPI:
    state = state or BackOfficeState()
    app = FastAPI(title="云州市政务服务受理系统（演示）")
    app.state.backoffice = state

    async def receive(body: SubmissionIn, idempotency_key: str | None, target: str) -> dict[str, Any]:
        with state.lock:
            state.attempts += 1
            if state.fail_remaining > 0:
                state.fail_remaining -= 1
                raise HTTPException(
                    state.fail_status, "演示：受理系统暂时不可用 / demo: temporarily unavailable"
                )
        if not idempotency_key:
            raise HTTPException(400, "缺少 Idempotency-Key / missing Idempotency-Key header")
        reference, created = state.accept(idempotency_key, body, target)
        if state.delay_s:
            await asyncio.sleep(state.delay_s)
        return {"reference": reference, "created": created}

    @app.post("/submissions", status_code=201)
    async def submit(
        body: SubmissionIn, idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None
    ) -> dict[str, Any]:
        return await receive(body, idempotency_key, "")

    @app.post("/submissions/{target:path}", status_code=201)
    async def submit_to(
        target: str,
        body: SubmissionIn,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> dict[str, Any]:
        return await receive(body, idempotency_key, target)

    @app.get("/submissions/{reference}")
    async def get_submission(reference: str) -> SubmissionIn:
        record = state.records.get(reference)
        if record is None:
            raise HTTPException(404, "没有这个受理编号 / no such reference")
        return record

    @app.post("/admin/fail")
    async def fail_next(body: FailIn) -> dict[str, int]:
        with state.lock:
            state.fail_remaining, state.fail_status, state.delay_s = body.times, body.status, body.delay_s
        return {"fail_remaining": body.times}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@dataclass(frozen=True)
class RunningBackOffice:
    url: str
    state: BackOfficeState

    @property
    def submissions_url(self) -> str:
        return f"{self.url}/submissions"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(
    state: BackOfficeState | None = None, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[RunningBackOffice]:
    """The back office on a real local port, in a daemon thread of this process (for tests and ``make run``)."""
    import uvicorn

    state = state or BackOfficeState()
    port = port or _free_port(host)
    config = uvicorn.Config(
        create_backoffice_app(state), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="backoffice-demo", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"demo back office did not start on {host}:{port}")
        time.sleep(0.02)
    try:
        yield RunningBackOffice(f"http://{host}:{port}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="demo back office for form submissions")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--fail-times", type=int, default=0, help="fail the first N submissions with HTTP 503"
    )
    args = parser.parse_args(argv)
    state = BackOfficeState(fail_remaining=args.fail_times)
    uvicorn.run(create_backoffice_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
