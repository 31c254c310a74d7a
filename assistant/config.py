"""``config.yml``: one pydantic model for the whole project configuration.

Each package owns the model of its own section; this module only composes them, so an unknown key or a bad value
anywhere is reported with its path (``knowledge.embedding_model: ...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.forms.config import FormsConfig
from assistant.handoff.config import HandoffConfig
from assistant.login_limits import LoginLimits
from assistant.privacy import PrivacyConfig
from assistant.server_config import ServerConfig, default_channels
from knowledge.config import KnowledgeConfig
from nlu.config import ComponentConfig, NLUSettings, default_pipeline


class ConfigError(ValueError):
    """config.yml is unreadable or invalid; the message names the file and the path of each bad key."""


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


def default_policies() -> list[PolicyConfig]:
    return [PolicyConfig(name="RulePolicy"), PolicyConfig(name="MemoizationPolicy")]


class DatabaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # relative SQLite paths are resolved against the project directory
    url: str = "sqlite:///var/gov-assistant.db"


class RedisConfig(BaseModel):
    """Set for several replicas: per-conversation locks, console and index-reload pub/sub, WeChat dedupe keys and
    the access-token cache go through Redis. Unset (one process), the same seams are in-process."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    # every key and channel starts with this, so several deployments can share one Redis
    prefix: str = "gov-assistant"
    # a conversation's lock is renewed while its turn runs; a replica killed while holding one blocks that
    # conversation for at most this long
    lock_lease_s: float = Field(10.0, ge=1.0)
    # a message waiting longer than this for its conversation's turn is refused (503, retry); below server.timeout_s
    lock_wait_s: float = Field(20.0, gt=0)


# The settings an operator most often sets per environment (a container's env, a Kubernetes secret) override
# config.yml, so one image serves SQLite on a laptop and PostgreSQL + Redis in production.
ENV_OVERRIDES = {
    "GOV_ASSISTANT_DATABASE_URL": ("database", "url"),
    "GOV_ASSISTANT_REDIS_URL": ("redis", "url"),
}


class ProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe: str = "default.v1"
    language: Literal["zh"] = "zh"
    assistant_id: str = "gov-assistant"
    pipeline: list[ComponentConfig] = Field(default_factory=default_pipeline)
    policies: list[PolicyConfig] = Field(default_factory=default_policies)
    nlu: NLUSettings = Field(default_factory=NLUSettings)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    forms: FormsConfig = Field(default_factory=FormsConfig)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    # failed staff logins before a username or a client address is locked out (docs/accounts.md)
    login_limits: LoginLimits = Field(default_factory=LoginLimits)
    server: ServerConfig = Field(default_factory=ServerConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    # channel name -> its settings; each channel validates its own (see connectors/)
    channels: dict[str, dict[str, Any] | None] = Field(default_factory=default_channels)


def _format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid configuration / 配置无效"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"  {path}: {e['msg']}")
    return "\n".join(lines)


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with the ``ENV_OVERRIDES`` variables set in ``environ`` written into their sections."""
    out = dict(data)
    for var, (section, key) in ENV_OVERRIDES.items():
        value = environ.get(var)
        if value:
            out[section] = {**(out.get(section) or {}), key: value}
    return out


def parse_config(
    data: dict[str, Any] | None, source: str = "config.yml", environ: Mapping[str, str] | None = None
) -> ProjectConfig:
    # Rasa writes `pipeline:` / `policies:` with no value to mean "use the defaults"
    data = {k: v for k, v in (data or {}).items() if v is not None}
    data = apply_env_overrides(data, os.environ if environ is None else environ)
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


def load_config(project: Path) -> ProjectConfig:
    """The project's config.yml, or the default Chinese pipeline when the project has none."""
    path = Path(project) / "config.yml"
    if not path.exists():
        return parse_config({}, str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML / YAML 格式错误: {err}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping / 顶层必须是键值映射")
    return parse_config(data, str(path))
