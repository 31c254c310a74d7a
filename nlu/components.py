"""The component registry and contract: the NLU pipeline is data, built by name from ``config.yml``.

spaCy-style: a component is registered under a name with its default settings and what it ``assigns`` /
``requires`` on a ``Message``. A component is built from settings plus a ``BuildContext``; trainable ones have
``train``; every one can write itself to a directory (``to_disk``) and come back from it (``from_disk``) with
no training data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from nlu.normalize import Normalized
from nlu.tokenizer import Token
from nlu.training_data import AnnotatedEntity, Example, TrainingData
from nlu.types import Entity, IntentScore


class PipelineError(ValueError):
    """The pipeline in config.yml cannot be built; the message names the component."""


def identity_normalized(text: str) -> Normalized:
    return Normalized(original=text, text=text, origin=(*range(len(text)), len(text)))


@dataclass(frozen=True)
class Message:
    """What a parse knows so far; each component returns a new one."""

    normalized: Normalized
    now: datetime
    tokens: tuple[Token, ...] = ()
    entities: tuple[Entity, ...] = ()
    intent: IntentScore | None = None
    ranking: tuple[IntentScore, ...] = ()

    @property
    def text(self) -> str:
        return self.normalized.original

    def evolve(self, **changes: Any) -> Message:
        return replace(self, **changes)


@dataclass(frozen=True)
class TrainExample:
    """One training example as the trainable components see it: normalised, tokenised, entities aligned."""

    example: Example
    normalized: Normalized
    tokens: tuple[Token, ...]
    # the annotated entities with offsets into ``normalized.text``
    entities: tuple[AnnotatedEntity, ...]


class Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class BuildContext:
    """What components may use while being built, trained or loaded. Passed in, never global."""

    timezone: str = "Asia/Shanghai"
    project_dir: Path | None = None
    user_dictionaries: tuple[Path, ...] = ()
    training_data: TrainingData | None = None
    # shared resources, created lazily by whoever needs them first and handed to later components
    encoder_factory: Callable[[], Encoder] | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def encoder(self) -> Encoder:
        if "encoder" not in self.resources:
            if self.encoder_factory is None:
                raise PipelineError("no sentence encoder configured / 未配置句向量模型")
            self.resources["encoder"] = self.encoder_factory()
        return self.resources["encoder"]


@runtime_checkable
class Component(Protocol):
    name: str

    def process(self, message: Message) -> Message: ...

    def to_disk(self, path: Path) -> dict[str, Any]:
        """Write own files under ``path`` (a directory it may create); return JSON settings for ``from_disk``."""
        ...


@runtime_checkable
class Trainable(Protocol):
    def train(self, examples: Sequence[TrainExample], data: TrainingData, ctx: BuildContext) -> None: ...


@runtime_checkable
class Preprocessor(Protocol):
    """Normalises or tokenises: applied to training examples too, so training sees what parsing sees."""

    def prepare(self, example: TrainExample) -> TrainExample: ...


Factory = Callable[[dict[str, Any], BuildContext], Component]
Loader = Callable[[Path, dict[str, Any], BuildContext], Component]


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    factory: Factory
    loader: Loader
    default_config: Mapping[str, Any] = field(default_factory=dict)
    assigns: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    # settings checked here: None leaves checking to the component itself (the rule extractors do)
    check_settings: bool = True
    # Rasa settings of the same-named Rasa component that we accept but do not use (reported at train time)
    rasa_ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Alias:
    """A Rasa component name and what we build for it (possibly nothing, when ours absorbs its job)."""

    name: str
    targets: tuple[str, ...]
    note: str


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, ComponentSpec] = {}
        self._aliases: dict[str, Alias] = {}
        self._unsupported: dict[str, str] = {}

    def register(self, spec: ComponentSpec) -> None:
        self._specs[spec.name] = spec

    def alias(self, name: str, targets: Iterable[str], note: str) -> None:
        self._aliases[name] = Alias(name, tuple(targets), note)

    def unsupported(self, name: str, reason: str) -> None:
        self._unsupported[name] = reason

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._specs))

    def get(self, name: str) -> ComponentSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise PipelineError(self._unknown(name)) from None

    def _unknown(self, name: str) -> str:
        return (
            f"unknown pipeline component '{name}' / 未知的管道组件 '{name}'; "
            f"known: {', '.join(sorted([*self._specs, *self._aliases]))}"
        )

    def resolve(self, entries: Sequence[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[ComponentSpec, dict[str, Any]]], list[str]]:
        """Config entries -> (spec, merged settings) in order, plus warnings naming what we cannot honour."""
        out: list[tuple[ComponentSpec, dict[str, Any]]] = []
        warnings: list[str] = []
        seen: set[str] = set()
        for name, settings in entries:
            if name in self._unsupported:
                warnings.append(f"{name}: not supported, skipped / 不支持，已跳过 ({self._unsupported[name]})")
                continue
            if name in self._aliases:
                alias = self._aliases[name]
                warnings.append(f"{name}: {alias.note}")
                for target in alias.targets:
                    if target not in seen:
                        seen.add(target)
                        out.append((self.get(target), dict(self.get(target).default_config)))
                continue
            spec = self.get(name)
            if name in seen:
                continue
            seen.add(name)
            settings = dict(settings)
            if spec.check_settings:
                ignored = sorted(k for k in settings if k in spec.rasa_ignored)
                if ignored:
                    warnings.append(f"{name}: setting(s) {', '.join(ignored)} not used / 未使用的设置")
                    settings = {k: v for k, v in settings.items() if k not in spec.rasa_ignored}
                unknown = sorted(set(settings) - set(spec.default_config))
                if unknown:
                    raise PipelineError(
                        f"{name}: unknown setting(s) {', '.join(unknown)} / 未知的设置; "
                        f"allowed: {', '.join(sorted(spec.default_config)) or '(none)'}"
                    )
            out.append((spec, {**spec.default_config, **settings}))
        _check_requires(out)
        return out, warnings


def _check_requires(specs: Sequence[tuple[ComponentSpec, dict[str, Any]]]) -> None:
    assigned: set[str] = set()
    for spec, _ in specs:
        missing = [r for r in spec.requires if r not in assigned]
        if missing:
            raise PipelineError(
                f"component '{spec.name}' requires {missing} set by an earlier component / "
                f"组件 '{spec.name}' 需要前面的组件先提供 {missing}"
            )
        assigned.update(spec.assigns)
