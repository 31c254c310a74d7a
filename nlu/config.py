"""Settings of the NLU pipeline, as written under ``pipeline:`` in a Rasa-shaped ``config.yml``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ComponentConfig(BaseModel):
    """One pipeline entry: ``- name: X`` plus that component's own settings (checked by the component)."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def default_pipeline() -> list[ComponentConfig]:
    """The Chinese pipeline a project gets when its config.yml names none."""
    return [
        ComponentConfig(name="ChineseNormalizer"),
        ComponentConfig(name="JiebaTokenizer"),
        ComponentConfig(name="IdCardExtractor"),
        ComponentConfig(name="PhoneExtractor"),
        ComponentConfig(name="ChineseTimeExtractor"),
        ComponentConfig(name="ChineseNumberExtractor"),
        ComponentConfig(name="PersonNameExtractor"),
        ComponentConfig(name="RegexEntityExtractor"),
        ComponentConfig(name="LookupEntityExtractor"),
        ComponentConfig(name="CRFEntityExtractor"),
        ComponentConfig(name="EntitySynonymMapper"),
        ComponentConfig(name="IntentClassifier"),
        ComponentConfig.model_validate({"name": "FallbackClassifier", "threshold": 0.4}),
    ]


class NLUSettings(BaseModel):
    """Project-wide NLU settings that are not one component's (under ``nlu:``)."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = "Asia/Shanghai"
    user_dictionaries: list[str] = Field(default_factory=list, description="extra jieba dictionaries, relative to the project")
