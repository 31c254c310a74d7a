"""Hostile JSON at the REST, web chat, console and knowledge-base endpoints: malformed documents, wrong types,
huge numbers, deep nesting, NUL and lone UTF-16 surrogates (text no database or response can encode). Every answer is a 4xx with a bilingual body; never
a 5xx, whether the caller is anonymous or a logged-in agent, admin or editor.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hostile_helpers import assert_error_body, staff_user

CID = "json-hostile-conversation"
# (path, who calls it, a body it accepts); the hostile variants below are built from each body
ENDPOINTS: list[tuple[str, str | None, dict[str, Any]]] = [
    ("/webhooks/rest/webhook", None, {"sender": "json-hostile", "message": "你好", "metadata": {"page": "home"}}),
    ("/model/parse", None, {"text": "你好", "message_id": "m-1"}),
    ("/webchat/messages", None, {"session_id": "hostilejson0001", "message_id": "m-1", "text": "你好"}),
    ("/console/api/login", None, {"username": "nobody", "password": "not-the-password"}),
    (f"/console/api/conversations/{CID}/messages", "agent", {"text": "您好"}),
    (f"/console/api/conversations/{CID}/typing", "agent", {"on": True}),
    (f"/console/api/conversations/{CID}/transfer", "agent", {"to_team": "general", "note": "转接"}),
    (f"/console/api/conversations/{CID}/close", "agent", {"outcome": "resolved", "note": ""}),
    (f"/console/api/conversations/{CID}/reveal", "admin", {"index": 0}),
    ("/api/kb/search", "admin", {"query": "身份证", "k": 3}),
    ("/api/kb/faq", "editor", {"question": "问？", "answer": "答", "similar_questions": ["问"], "document_ids": [1]}),
    ("/api/kb/documents", "editor", {"title": "标题", "body": "正文", "tags": ["标签"]}),
]
DEEP = "[" * 100_000 + "]" * 100_000  # 200 KB: under the body limit, far over any parser's recursion limit
NESTED_900 = '{"a":' * 900 + "1" + "}" * 900  # parseable by json, deeper than anything means anything
# raw JSON values put in place of one field
FIELD_VALUES = {
    "int": "123",
    "list": "[]",
    "object": "{}",
    "null": "null",
    "bool": "true",
    "float overflow": "1e999999",
    "5000-digit int": "9" * 5000,
    "negative huge": "-1.7976931348623157e309",
    "deep array": DEEP,
    "nested 900": NESTED_900,
}
# text no database or response can hold: NUL (PostgreSQL refuses it in text) and lone surrogates (no UTF-8)
UNSTORABLE_VALUES = {"lone high surrogate": '"\\ud800x"', "lone low surrogate": '"\\udfff"', "NUL": '"a\\u0000b"'}
WHOLE_BODIES = {
    "truncated": b'{"text": "\xe4\xbd\xa0',
    "trailing comma": b'{"text": "a",}',
    "single quotes": b"{'text': 'a'}",
    "two documents": b'{"text": "a"}{"text": "b"}',
    "NaN": b'{"text": NaN}',
    "array": b"[]",
    "string": b'"text"',
    "number": b"1e999999",
    "empty": b"",
    "invalid utf-8": b'{"text": "\xff\xfe"}',
    "utf-8 surrogate bytes": b'{"text": "\xed\xa0\x80"}',
    "surrogate key": b'{"\\udc00": 1}',
    "deep": DEEP.encode(),
}


@pytest.fixture(scope="module")
def auth(runtime: Any) -> dict[str | None, dict[str, str] | None]:
    """Headers per caller; None where this checkout has no such role (the case is skipped)."""
    out: dict[str | None, dict[str, str] | None] = {None: {}}
    for role in ("agent", "admin", "editor"):
        user = staff_user(runtime, role)
        out[role] = {"Authorization": f"Bearer {runtime.accounts.open_session(user)[0]}"} if user else None
    return out


def variants(base: dict[str, Any]) -> list[tuple[str, bytes]]:
    out = [(f"body {name}", body) for name, body in WHOLE_BODIES.items()]
    for field in base:
        template = json.dumps({**base, field: "__HOSTILE__"}, ensure_ascii=False)
        for name, raw in {**FIELD_VALUES, **UNSTORABLE_VALUES}.items():
            if name in ("int", "list", "object", "null", "bool") and json.loads(raw) == base[field]:
                continue  # not hostile for this field
            out.append((f"{field}={name}", template.replace('"__HOSTILE__"', raw).encode()))
    return out


def headers_for(auth: dict[str | None, dict[str, str] | None], role: str | None) -> dict[str, str]:
    found = auth.get(role)
    if found is None:
        pytest.skip(f"this checkout has no {role!r} role")
    return {"content-type": "application/json", **found}


# variants no endpoint may accept: unparseable, or text that cannot be stored
MUST_REFUSE = ("body ", "deep array", "5000-digit int", *UNSTORABLE_VALUES)


@pytest.mark.parametrize(("path", "role", "base"), ENDPOINTS, ids=[p for p, _, _ in ENDPOINTS])
def test_hostile_json_gets_a_bilingual_4xx(client: TestClient, auth: Any, path: str, role: str | None,
                                           base: dict[str, Any]) -> None:
    """Never a 5xx; a refusal is bilingual. A value of another type may be one the field takes (an empty list
    of tags, metadata nested 900 deep): the endpoint decides, as long as it answers."""
    headers = headers_for(auth, role)
    problems = []
    for name, body in variants(base):
        resp = client.post(path, content=body, headers=headers)
        refuse = any(marker in name for marker in MUST_REFUSE)
        if resp.status_code >= 500 or (refuse and resp.status_code < 400):
            problems.append(f"{name}: {resp.status_code} {resp.text[:200]}")
            continue
        if resp.status_code < 400:
            continue
        try:
            assert_error_body(resp.json())
        except (AssertionError, ValueError) as err:
            problems.append(f"{name}: not a bilingual error: {err}")
            continue
        unstorable = any(k in name for k in UNSTORABLE_VALUES) or name in ("body utf-8 surrogate bytes",
                                                                            "body surrogate key")
        if unstorable and resp.json()["code"] != "invalid_text":
            problems.append(f"{name}: {resp.status_code} {resp.json()['code']} (expected invalid_text)")
    assert not problems, "\n".join(problems)


def test_the_same_requests_without_a_login_are_refused(client: TestClient) -> None:
    for path, role, base in ENDPOINTS:
        if role is None:
            continue
        for _, body in variants(base)[:5]:
            resp = client.post(path, content=body, headers={"content-type": "application/json"})
            # an unparseable body is refused before the login is looked at (FastAPI reads the body first)
            assert resp.status_code in (400, 401, 422), (path, resp.status_code)
            assert_error_body(resp.json())


def test_accepted_odd_values_are_stored_and_returned_intact(client: TestClient, runtime: Any) -> None:
    """What is valid must still work: astral characters (a surrogate pair in JSON), RTL scripts, long keys."""
    body = {"sender": "json-odd", "message": "你好 😀 مرحبا", "metadata": {"k" * 1000: ["\U0001f600"] * 100}}
    resp = client.post("/webhooks/rest/webhook", content=json.dumps(body).encode(),  # ensure_ascii: \ud83d\ude00
                       headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text[:300]
    parsed = client.post("/model/parse", json={"text": "😀 你好"})
    assert parsed.status_code == 200 and parsed.json()["text"] == "😀 你好"
