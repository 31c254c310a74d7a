"""Settings of service forms (``forms:`` in config.yml) and of the rasa-sdk action endpoint (``endpoints.yml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class SubmissionConfig(BaseModel):
    """Where confirmed forms are posted (``forms.submission`` in config.yml)."""

    model_config = ConfigDict(extra="forbid")
    # None: forms cannot be submitted; the citizen is told so and the data is kept pending
    url: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)
    # retries after the first attempt, so max_retries=2 means at most three POSTs
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)


class OutboxConfig(BaseModel):
    """Background retry of confirmed forms the back office could not take (``forms.outbox`` in config.yml)."""

    model_config = ConfigDict(extra="forbid")
    # off: a failed submission is retried only when the citizen writes again or says "重试"
    enabled: bool = True
    # how often each replica looks for kept forms that are due
    interval_s: float = Field(default=10.0, gt=0)
    # the first background attempt comes this long after the failure, then twice as long each time, up to the max
    backoff_s: float = Field(default=15.0, ge=0)
    backoff_max_s: float = Field(default=600.0, ge=0)
    batch: int = Field(default=20, ge=1, le=1000)
    # a replica that dies while holding a row gives it up after this long
    lease_s: float = Field(default=120.0, gt=0)


class FormsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    submission: SubmissionConfig = Field(default_factory=SubmissionConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    # the project's rasa-sdk actions package, loaded in process when endpoints.yml names no action server
    actions_package: str = "actions"
    # a failed submission is retried automatically on the citizen's next message
    retry_pending_on_next_turn: bool = True


class ActionEndpointConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    url: str
    timeout_s: float = Field(default=10.0, gt=0, alias="timeout")


class EndpointsConfig(BaseModel):
    # Rasa's endpoints.yml has many sections (tracker_store, event_broker, ...); only action_endpoint is ours
    model_config = ConfigDict(extra="allow")
    action_endpoint: ActionEndpointConfig | None = None


class EndpointsError(ValueError):
    """endpoints.yml is unreadable or invalid."""


def load_endpoints(project: Path) -> EndpointsConfig:
    path = Path(project) / "endpoints.yml"
    if not path.exists():
        return EndpointsConfig()
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return EndpointsConfig.model_validate(data)
    except (yaml.YAMLError, ValidationError) as err:
        raise EndpointsError(f"{path}: invalid endpoints / endpoints.yml 无效: {err}") from None
