"""What the form loop hands to a back office, and what it gets back.

The HTTP client lives in ``connectors/submission.py``; the engine only knows this protocol, so tests and other
back offices (a queue, a database) plug in the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Submission:
    conversation_id: str
    form: str
    data: Mapping[str, Any]
    # the form's ``submission_target``: a path under the configured URL or a full URL; None for the URL itself
    target: str | None = None

    def idempotency_key(self) -> str:
        """The same conversation submitting the same form with the same data gets the same key.

        The attempt number is deliberately not part of it: a retry after a timeout must not create a second
        application in the back office.
        """
        canonical = json.dumps(
            {"conversation": self.conversation_id, "form": self.form, "data": dict(self.data)},
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Receipt:
    reference: str
    attempts: int


class SubmissionError(Exception):
    """A submission that did not go through. ``retryable`` says whether trying again later can help."""

    def __init__(self, code: str, message_zh: str, message_en: str, *, retryable: bool, attempts: int = 0):
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.retryable = retryable
        self.attempts = attempts


class Submitter(Protocol):
    async def submit(self, submission: Submission) -> Receipt: ...


class UnconfiguredSubmitter:
    """Used when config.yml names no back office: every submission fails plainly and stays pending."""

    async def submit(self, submission: Submission) -> Receipt:
        raise SubmissionError(
            "submission_not_configured",
            "暂时无法提交：系统未配置受理地址",
            "cannot submit: no back-office URL is configured",
            retryable=False,
        )
