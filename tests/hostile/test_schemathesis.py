"""schemathesis (v4) against the full app's OpenAPI schema, in process over ASGI: every operation, without
credentials and with a bearer token per staff role (agent, admin, and editor where the checkout has it).

Cases come from schemathesis' own strategies (``APIOperation.as_strategy``), valid and invalid ones
(``GenerationMode.POSITIVE`` / ``NEGATIVE``), and every response goes through the four checks schemathesis names
``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance`` and
``response_schema_conformance``. (schemathesis' lazy pytest loader, ``schemathesis.pytest.from_fixture``, fails
under pytest 9.2 on a removed ``Node._nodeid``; Hypothesis' ``@given`` over the same strategies needs no plugin.)

Examples are bounded per operation and mode, Hypothesis' deadline is off, and the app's rate limit is high, so the
whole run takes a couple of minutes on 2 cores (``HOSTILE_TRACE=1`` prints each operation's time and statuses).
WebSocket routes are not in the schema; socket.io is a mounted sub-app outside it.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (  # the check registry, by the names schemathesis documents
    CheckFunction,
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
# per operation, mode and identity
MAX_EXAMPLES = 10
# an operation that refuses the caller (401/403) stops at the login check whatever the input: a few suffice
MAX_EXAMPLES_REFUSED = 3
# operations that answer without a login (citizens' channels, health, logging in); every other one is run again
# per role
PUBLIC_PREFIXES = ("/webhooks/", "/webchat/", "/model/", "/healthz", "/readyz")


def revokes_token(case: Any) -> bool:
    """A log-out revokes the token it is called with: it gets a token of its own per call."""
    return bool(case.path.endswith("/logout"))


def is_public(path: str) -> bool:
    return path.endswith("/login") or path.startswith(PUBLIC_PREFIXES)


@dataclass
class Report:
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    unsatisfiable: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def slowest(self, n: int = 5) -> str:
        top = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:n]
        return ", ".join(f"{label} {secs:.1f} s" for label, secs in top)


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def fuzz(schema: Any, headers_for: Callable[[Any], dict[str, str]], select: Callable[[str], bool]) -> Report:
    """Every selected operation, valid and invalid cases. An operation that refuses the caller (401/403) for a
    few valid cases stops at the login check whatever the input, so it gets no more than those few."""
    report = Report()
    for result in schema.get_all_operations():
        operation = result.ok()  # an invalid operation definition fails here, naming it
        if not select(operation.path):
            continue
        report.operations.append(operation.label)
        started = time.monotonic()
        seen: set[int] = set()
        plan = [(GenerationMode.POSITIVE, MAX_EXAMPLES_REFUSED), (GenerationMode.POSITIVE, MAX_EXAMPLES),
                (GenerationMode.NEGATIVE, MAX_EXAMPLES)]
        for step, (mode, examples) in enumerate(plan):
            if step and seen <= {401, 403}:
                examples = MAX_EXAMPLES_REFUSED if mode is GenerationMode.NEGATIVE else 0
            if not examples:
                continue

            run_mode(operation, mode, examples, headers_for, report, seen)
        report.seconds[operation.label] = time.monotonic() - started
        if os.environ.get("HOSTILE_TRACE"):
            print(f"  {operation.label}: {report.seconds[operation.label]:.1f} s {sorted(seen)}", flush=True)
    return report


def run_mode(operation: Any, mode: GenerationMode, examples: int, headers_for: Callable[[Any], dict[str, str]],
             report: Report, seen: set[int]) -> None:
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        # publishing builds a whole index version: seconds on a busy machine, not schemathesis' default 10
        response = case.call_and_validate(headers=headers_for(case), checks=CHECKS, timeout=120)
        report.calls += 1
        report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
        seen.add(response.status_code)

    try:
        run()
    except Unsatisfiable:
        # nothing invalid can be sent to an operation without parameters or body (negative mode only)
        report.unsatisfiable.append(f"{operation.label} [{mode.value}]")
    except Exception as err:  # every operation runs; the failures are reported together
        detail = "".join(traceback.format_exception(err))[-3000:]
        report.failures.append(f"{operation.label} [{mode.value}]: {detail}")


def assert_clean(report: Report, expected_operations: int = 1) -> None:
    assert len(report.operations) >= expected_operations, report.operations
    assert not [u for u in report.unsatisfiable if "[positive]" in u], report.unsatisfiable
    assert not report.failures, "\n\n".join(report.failures)
    assert not [s for s in report.statuses if s >= 500], report.statuses


def test_every_operation_without_credentials(api_schema: Any) -> None:
    started = time.monotonic()
    report = fuzz(api_schema, lambda case: {}, lambda path: True)
    # the protected operations refuse (401) and the public ones were really exercised (2xx)
    assert 401 in report.statuses and 200 in report.statuses, report.statuses
    print(f"unauthenticated: {len(report.operations)} operations, {report.calls} calls, "
          f"{time.monotonic() - started:.0f} s, statuses {dict(sorted(report.statuses.items()))}; "
          f"slowest: {report.slowest()}")
    assert_clean(report, expected_operations=20)


@pytest.mark.parametrize("role", ["agent", "admin", "editor"])
def test_every_protected_operation_with_a_bearer_token(api_schema: Any, runtime: Any, role: str) -> None:
    from hostile_helpers import staff_user

    user = staff_user(runtime, role)
    if user is None:
        pytest.skip(f"this checkout has no {role!r} role (assistant.accounts.ROLES)")
    token = runtime.accounts.open_session(user)[0]

    def headers_for(case: Any) -> dict[str, str]:
        own = runtime.accounts.open_session(user)[0] if revokes_token(case) else token
        return {"Authorization": f"Bearer {own}"}

    started = time.monotonic()
    report = fuzz(api_schema, headers_for, lambda path: not is_public(path))
    # the token was accepted somewhere (a 2xx), so the operations were exercised past the login check
    assert any(200 <= s < 300 for s in report.statuses), report.statuses
    print(f"{role}: {len(report.operations)} operations, {report.calls} calls, "
          f"{time.monotonic() - started:.0f} s, statuses {dict(sorted(report.statuses.items()))}; "
          f"slowest: {report.slowest()}")
    assert_clean(report, expected_operations=10)
