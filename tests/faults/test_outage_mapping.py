"""The outage guard on a real app (no services needed): which exceptions become 503 + Retry-After, which do not."""

from __future__ import annotations

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from assistant.errors import install_error_handlers
from assistant.outage import RETRY_AFTER_S, OutageGuard, unavailable_dependency
from knowledge.db import PG_CONNECT_TIMEOUT_S, engine_options


class ActionFailed(RuntimeError):
    pass


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/db-down")
    async def db_down() -> None:
        # a real driver error: nothing listens on port 1
        engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", **engine_options("postgresql+psycopg://x@h/d"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @app.get("/redis-down")
    async def redis_down() -> None:
        await redis.asyncio.Redis(port=1, socket_connect_timeout=1, retry=None).ping()

    @app.get("/wrapped")
    async def wrapped() -> None:
        try:
            raise OperationalError("SELECT 1", {"id_number": "110101199003074514"}, ConnectionRefusedError())
        except OperationalError as err:
            raise ActionFailed("the action could not run") from err

    @app.get("/constraint")
    async def constraint() -> None:
        raise IntegrityError("INSERT", {}, ValueError("duplicate key"))

    @app.get("/bug")
    async def bug() -> None:
        raise KeyError("x")

    app.add_middleware(OutageGuard)
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


@pytest.mark.parametrize(("path", "dependency"), [("/db-down", "数据库"), ("/redis-down", "Redis"), ("/wrapped", "数据库")])
def test_unreachable_service_is_503_with_retry_hint(client: TestClient, path: str, dependency: str) -> None:
    r = client.get(path)
    assert r.status_code == 503
    assert r.headers["retry-after"] == str(RETRY_AFTER_S)
    body = r.json()
    assert body["code"] == "service_unavailable"
    assert "暂时不可用" in body["message_zh"] and body["message_en"].startswith("Service temporarily unavailable")
    assert dependency in body["message_zh"] + body["message_en"]
    # the statement's parameters (personal data) never reach the client
    assert "110101" not in r.text


@pytest.mark.parametrize("path", ["/constraint", "/bug"])
def test_other_errors_stay_500(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"
    assert "retry-after" not in r.headers


def test_engine_options_bound_postgres_connects_only() -> None:
    pg = engine_options("postgresql+psycopg://u@h/d")
    assert pg == {"pool_pre_ping": True, "connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT_S}}
    # an operator's own timeout in the URL is kept
    assert "connect_args" not in engine_options("postgresql+psycopg://u@h/d?connect_timeout=10")
    assert engine_options("sqlite:///x.db") == {}


def test_dependency_of_unrelated_error_is_none() -> None:
    assert unavailable_dependency(ValueError("no")) is None
    assert unavailable_dependency(redis.exceptions.TimeoutError()) == "redis"
