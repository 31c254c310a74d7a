"""Errors that leave the process: each has a stable code and a Chinese and an English message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message_zh: str
    message_en: str
    headers: dict[str, str] | None = None

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en}

    def retry_hint(self) -> dict[str, int]:
        """``{"retry_after": seconds}`` for a refusal that a later retry can fix (its Retry-After header), else
        nothing: what socket channels send, having no headers."""
        value = (self.headers or {}).get("Retry-After")
        return {"retry_after": max(1, int(value))} if value and value.isdigit() else {}


# Generic statuses turned into bilingual errors when a route raises a bare HTTPException.
_STATUS_TEXT: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "请求格式不正确", "The request is malformed"),
    401: ("unauthorized", "请先登录", "Authentication required"),
    403: ("forbidden", "没有权限执行此操作", "You are not allowed to do this"),
    404: ("not_found", "找不到请求的资源", "Not found"),
    405: ("method_not_allowed", "不支持该请求方法", "Method not allowed"),
    409: ("conflict", "操作冲突，请刷新后重试", "Conflict; reload and try again"),
    413: ("payload_too_large", "请求内容过大", "Request body too large"),
    415: ("unsupported_media_type", "不支持的内容类型", "Unsupported media type"),
    422: ("invalid_request", "请求内容不符合要求", "The request content is invalid"),
    429: ("rate_limited", "请求过于频繁，请稍后再试", "Too many requests; slow down"),
    503: ("unavailable", "服务暂时不可用，请稍后再试", "Service temporarily unavailable; retry later"),
    504: ("timeout", "处理超时，请稍后再试", "The request timed out; retry later"),
}


def error_for_status(status: int, detail: str | None = None) -> ApiError:
    code, zh, en = _STATUS_TEXT.get(status, ("error", "请求失败", "Request failed"))
    if detail and status < 500:
        en = f"{en}: {detail}"
    return ApiError(status, code, zh, en)


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if isinstance(exc.detail, dict) and {"code", "message_zh", "message_en"} <= exc.detail.keys():
        return JSONResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    err = error_for_status(exc.status_code, detail)
    err.headers = dict(exc.headers or {}) or None
    return error_response(err)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    where = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5]
    )
    err = error_for_status(422, where)
    body = err.body() | {"errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()[:20]]}
    return JSONResponse(body, status_code=422)


async def _client_gone(_: Request, exc: Exception) -> Response:
    # the client left mid-body, or a request guard cut the body off and has answered already (413): not an error
    # of ours, and nobody is listening for a response
    log.debug("client disconnected before the request body was read")
    return Response(status_code=400)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    # the message may contain personal data: log the type and the traceback's frames, not the arguments
    log.error("unhandled %s", type(exc).__name__, exc_info=(type(exc), exc, None))
    return error_response(ApiError(500, "internal_error", "服务器内部错误，请稍后再试", "Internal server error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
    document_errors(app)


# The statuses any route may answer with besides its own: bad input (400/413/415/422), no or the wrong login
# (401/403), a missing resource or a conflict (404/409), the request guards (429/504) and an outage (503).
DOCUMENTED_STATUSES = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503, 504)
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
API_ERROR_SCHEMA: dict[str, Any] = {
    "title": "ApiError",
    "type": "object",
    "required": ["code", "message_zh", "message_en"],
    "properties": {
        "code": {"type": "string", "description": "stable machine-readable code"},
        "message_zh": {"type": "string", "description": "中文说明"},
        "message_en": {"type": "string", "description": "English message"},
        "errors": {
            "type": "array",
            "description": "validation details (422)",
            "items": {"type": "object", "properties": {"loc": {"type": "array"}, "msg": {"type": "string"}}},
        },
    },
}


def document_errors(app: FastAPI) -> None:
    """Declare the bilingual error responses in every operation of the OpenAPI schema.

    The handlers above give every route the same error shape, so clients (and schemathesis) must find it in the
    schema: FastAPI would otherwise declare only its own 422 body, which is not what this API sends.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ApiError"] = API_ERROR_SCHEMA
        ref = {"$ref": "#/components/schemas/ApiError"}
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in _HTTP_METHODS:
                    continue
                responses = operation.setdefault("responses", {})
                for status in DOCUMENTED_STATUSES:
                    declared = responses.get(str(status))
                    if declared is None or "HTTPValidationError" in str(declared):
                        _, zh, en = _STATUS_TEXT[status]
                        responses[str(status)] = {
                            "description": f"{zh} / {en}",
                            "content": {"application/json": {"schema": ref}},
                        }
        # FastAPI's own validation body is never sent (``_validation_error`` answers instead)
        if "HTTPValidationError" not in str(schema.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
