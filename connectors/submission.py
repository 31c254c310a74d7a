"""Form submission to a back office: an HTTP POST of JSON with an idempotency key, bounded retries, a timeout;
and the wiring of the outbox that submits kept forms in the background when the back office was down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI

from assistant.forms.config import FormsConfig, SubmissionConfig
from assistant.forms.outbox import OutboxStore, OutboxWorker
from assistant.forms.submission import Receipt, Submission, SubmissionError, Submitter, UnconfiguredSubmitter

log = logging.getLogger(__name__)

# 408/425/429 and 5xx say "not now"; any other 4xx says "never like this", so retrying would only repeat it
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class HttpSubmitter:
    def __init__(
        self,
        config: SubmissionConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not config.url:
            raise ValueError("forms.submission.url is not set")
        self._config = config
        self._transport = transport
        self._sleep = sleep

    def url_for(self, submission: Submission) -> str:
        base = self._config.url or ""
        target = submission.target
        if not target:
            return base
        if target.startswith(("http://", "https://")):
            return target
        return base.rstrip("/") + "/" + target.lstrip("/")

    def _backoff(self, retry: int) -> float:
        return min(self._config.backoff_s * (2**retry), self._config.backoff_max_s)

    async def submit(self, submission: Submission) -> Receipt:
        key = submission.idempotency_key()
        body = {
            "conversation_id": submission.conversation_id,
            "form": submission.form,
            "data": dict(submission.data),
        }
        headers = {"Idempotency-Key": key}
        url = self.url_for(submission)
        attempts = self._config.max_retries + 1
        last: SubmissionError | None = None
        async with httpx.AsyncClient(transport=self._transport, timeout=self._config.timeout_s) as client:
            for attempt in range(1, attempts + 1):
                try:
                    response = await client.post(url, json=body, headers=headers)
                except httpx.TimeoutException:
                    last = SubmissionError(
                        "submission_timeout", "受理系统响应超时", "the back office timed out", retryable=True
                    )
                except httpx.TransportError as err:
                    last = SubmissionError(
                        "submission_unreachable",
                        "无法连接受理系统",
                        f"cannot reach the back office ({type(err).__name__})",
                        retryable=True,
                    )
                else:
                    if response.status_code in (200, 201):
                        return Receipt(self._reference(response, attempt), attempt)
                    if response.status_code not in _RETRYABLE_STATUS:
                        raise SubmissionError(
                            "submission_rejected",
                            f"受理系统拒绝了申请（{response.status_code}）",
                            f"the back office rejected the submission (HTTP {response.status_code})",
                            retryable=False,
                            attempts=attempt,
                        )
                    last = SubmissionError(
                        "submission_unavailable",
                        "受理系统暂时不可用",
                        f"the back office is unavailable (HTTP {response.status_code})",
                        retryable=True,
                    )
                # the key is a hash of the data, so it is safe to log; the data itself is not
                log.warning("submission %s attempt %d/%d failed: %s", key[:12], attempt, attempts, last.code)
                if attempt < attempts:
                    await self._sleep(self._backoff(attempt - 1))
        assert last is not None
        last.attempts = attempts
        raise last

    @staticmethod
    def _reference(response: httpx.Response, attempt: int) -> str:
        try:
            reference = response.json().get("reference")
        except (ValueError, AttributeError):
            reference = None
        if not isinstance(reference, str) or not reference:
            raise SubmissionError(
                "submission_bad_response",
                "受理系统返回的结果无法识别",
                "the back office answered without a reference number",
                retryable=False,
                attempts=attempt,
            )
        return reference


def submitter_for(config: SubmissionConfig) -> Submitter:
    """The HTTP submitter when ``forms.submission.url`` is set; otherwise one that fails plainly, so a form
    still collects and keeps its data."""
    return HttpSubmitter(config) if config.url else UnconfiguredSubmitter()


def outbox_for(config: FormsConfig, database_url: str) -> OutboxStore | None:
    """The table where forms the back office could not take wait for the background retry (``forms.outbox``)."""
    return OutboxStore(database_url) if config.outbox.enabled and config.submission.url else None


def attach_outbox(runtime: Any, app: FastAPI) -> OutboxWorker | None:
    """Run the outbox worker with ``app`` (started and stopped by its lifespan, around any lifespan it has).

    The worker pushes a late success through ``runtime.delivery`` (the channel the citizen wrote from), so the
    composition root calls this once the app's channels are bound."""
    forms = getattr(runtime, "forms", None)
    if forms is None or forms.outbox is None or forms.submitter is None:
        return None
    config: FormsConfig = getattr(runtime.config, "forms", None) or FormsConfig()
    worker = OutboxWorker(
        forms.outbox, forms.forms, forms.submitter, runtime.agent, config.outbox, getattr(runtime, "delivery", None)
    )
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        await worker.start()
        try:
            async with inner(app_) as state:
                yield state
        finally:
            await worker.aclose()

    app.router.lifespan_context = lifespan
    runtime.outbox_worker = worker
    return worker
