"""The built-in components and the default registry: normaliser, jieba tokenizer, rule extractors, synonyms.

Rule extractors live in ``nlu.extractors`` (contract: ``X(**settings).extract(doc, now) -> list[Entity]``); here
they are only wrapped as pipeline components. Training data feeds the ones that learn from it: Rasa ``regex:``
items become RegexEntityExtractor patterns, ``lookup:`` tables LookupEntityExtractor tables, ``synonym:`` items
and annotated values EntitySynonymMapper synonyms — stored with the model, so loading needs no training data.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jieba

from nlu.components import (
    BuildContext,
    Component,
    ComponentSpec,
    Message,
    PipelineError,
    Registry,
    TrainExample,
)
from nlu.crf import CRF_DEFAULTS, CRFEntityExtractor
from nlu.intent import FALLBACK_DEFAULTS, INTENT_DEFAULTS, FallbackClassifier, IntentClassifier
from nlu.normalize import normalize
from nlu.tokenizer import GOV_DICT, make_segmenter, segment, split_at
from nlu.training_data import AnnotatedEntity, TrainingData
from nlu.types import Entity


class ChineseNormalizer:
    name = "ChineseNormalizer"

    def __init__(self, settings: dict[str, Any], ctx: BuildContext | None = None) -> None:
        self.settings = settings

    def _normalize(self, text: str) -> Any:
        return normalize(
            text,
            traditional_to_simplified=bool(self.settings["traditional_to_simplified"]),
            lowercase=bool(self.settings["lowercase"]),
        )

    def process(self, message: Message) -> Message:
        return message.evolve(normalized=self._normalize(message.text))

    def prepare(self, example: TrainExample) -> TrainExample:
        norm = self._normalize(example.example.text)
        return TrainExample(example.example, norm, (), _entities_to_normalized(example.example.entities, norm))

    def to_disk(self, path: Path) -> dict[str, Any]:
        return dict(self.settings)

    @classmethod
    def from_disk(cls, path: Path, settings: dict[str, Any], ctx: BuildContext) -> ChineseNormalizer:
        return cls(settings, ctx)


def _entities_to_normalized(entities: Sequence[AnnotatedEntity], norm: Any) -> tuple[AnnotatedEntity, ...]:
    """Annotation offsets index the raw example; map them onto the normalised text the models see."""
    origin = norm.origin

    def to_norm(pos: int) -> int:
        return next((i for i, o in enumerate(origin) if o >= pos), len(norm.text))

    out = []
    for ent in entities:
        start, end = to_norm(ent.start), to_norm(ent.end)
        out.append(AnnotatedEntity(ent.entity, start, end, norm.text[start:end], ent.value, ent.role, ent.group))
    return tuple(out)


class JiebaTokenizer:
    """jieba with the shipped government dictionary, the project's dictionaries and words from training data."""

    name = "JiebaTokenizer"

    def __init__(self, settings: dict[str, Any], ctx: BuildContext) -> None:
        self.settings = settings
        self.dictionaries: list[Path] = [GOV_DICT, *ctx.user_dictionaries]
        if settings.get("dictionary_path") and ctx.project_dir is not None:
            self.dictionaries.append(ctx.project_dir / settings["dictionary_path"])
        self.words: list[str] = []
        self.segmenter: jieba.Tokenizer | None = None

    def train(self, examples: Sequence[TrainExample], data: TrainingData, ctx: BuildContext) -> None:
        # normalised forms too: the model sees 社会保险 where the citizen typed 社會保險
        words = set(data.vocabulary_words())
        words.update(a.text for e in examples for a in e.entities)
        self.words = sorted(w for w in words if w.strip())
        self.segmenter = None

    def _seg(self) -> jieba.Tokenizer:
        if self.segmenter is None:
            self.segmenter = make_segmenter(self.dictionaries, self.words)
        return self.segmenter

    def process(self, message: Message) -> Message:
        return message.evolve(tokens=tuple(segment(self._seg(), message.normalized.text)))

    def prepare(self, example: TrainExample) -> TrainExample:
        tokens = segment(self._seg(), example.normalized.text)
        bounds = [b for e in example.entities for b in (e.start, e.end)]
        return TrainExample(example.example, example.normalized, tuple(split_at(tokens, bounds)), example.entities)

    def to_disk(self, path: Path) -> dict[str, Any]:
        path.mkdir(parents=True, exist_ok=True)
        names = []
        for i, src in enumerate(self.dictionaries):
            if Path(src).exists() and Path(src) != GOV_DICT:
                name = f"dict{i}_{Path(src).name}"
                shutil.copyfile(src, path / name)
                names.append(name)
        (path / "words.txt").write_text("\n".join(self.words), encoding="utf-8")
        return {**self.settings, "dictionaries": names}

    @classmethod
    def from_disk(cls, path: Path, settings: dict[str, Any], ctx: BuildContext) -> JiebaTokenizer:
        names = settings.pop("dictionaries", [])
        self = cls({k: v for k, v in settings.items() if k != "dictionary_path"}, BuildContext())
        self.settings = settings
        self.dictionaries = [GOV_DICT, *(path / n for n in names)]
        self.words = [w for w in (path / "words.txt").read_text(encoding="utf-8").split("\n") if w]
        return self


class RuleExtractor:
    """One rule-based extractor from ``nlu.extractors`` as a pipeline component."""

    def __init__(self, name: str, extractor: Any, settings: dict[str, Any],
                 resolve: Callable[[list[Entity]], list[Entity]]) -> None:
        self.name = name
        self.settings = settings
        self.extractor = extractor
        self.resolve = resolve

    def process(self, message: Message) -> Message:
        found = self.extractor.extract(message.normalized, message.now)
        if not found:
            return message
        # one entity per stretch of text: an ID number beats the phone-like digits inside it
        return message.evolve(entities=tuple(self.resolve([*message.entities, *found])))

    def to_disk(self, path: Path) -> dict[str, Any]:
        return dict(self.settings)


class SynonymMapper:
    name = "EntitySynonymMapper"

    def __init__(self, mapper: Any, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.mapper = mapper

    def process(self, message: Message) -> Message:
        return message.evolve(entities=tuple(self.mapper.map(list(message.entities))))

    def to_disk(self, path: Path) -> dict[str, Any]:
        return dict(self.settings)


def _extractors_module() -> Any:
    try:
        return importlib.import_module("nlu.extractors")
    except ImportError as err:  # the rule extractors are another module; say so instead of a bare traceback
        raise PipelineError(f"rule extractors unavailable / 规则抽取器不可用: {err}") from None


def _from_training_data(name: str, settings: dict[str, Any], data: TrainingData | None) -> dict[str, Any]:
    """Merge what Rasa keeps in nlu.yml (regex, lookup, synonym items) into the extractor's settings."""
    if data is None:
        return settings
    if name == "RegexEntityExtractor" and data.regexes:
        extra = [{"name": r.name, "pattern": r.pattern} for r in data.regexes]
        return {**settings, "patterns": [*settings.get("patterns", []), *extra]}
    if name == "LookupEntityExtractor" and data.lookup_tables:
        tables = {k: list(v) for k, v in settings.get("tables", {}).items()}
        for entity, values in data.lookup_map().items():
            tables[entity] = sorted({*tables.get(entity, []), *values})
        return {**settings, "tables": tables}
    if name == "EntitySynonymMapper" and data.synonyms:
        return {**settings, "synonyms": {**data.synonym_map(), **settings.get("synonyms", {})}}
    return settings


def _rule_spec(name: str) -> ComponentSpec:
    def factory(settings: dict[str, Any], ctx: BuildContext) -> Component:
        mod = _extractors_module()
        if name not in mod.EXTRACTORS:
            raise PipelineError(f"rule extractor '{name}' is not available / 规则抽取器 '{name}' 不可用")
        merged = _from_training_data(name, settings, ctx.training_data)
        try:
            instance = mod.EXTRACTORS[name](**merged)
        except (TypeError, ValueError) as err:
            raise PipelineError(f"{name}: bad settings / 配置错误: {err}") from None
        if name == "EntitySynonymMapper":
            return SynonymMapper(instance, merged)
        return RuleExtractor(name, instance, merged, mod.resolve_overlaps)

    def loader(path: Path, settings: dict[str, Any], ctx: BuildContext) -> Component:
        return factory(settings, BuildContext(timezone=ctx.timezone))

    assigns = ("entities",)
    requires = ("entities",) if name == "EntitySynonymMapper" else ("normalized",)
    return ComponentSpec(name, factory, loader, {}, assigns, requires, check_settings=False)


RULE_EXTRACTORS = (
    "IdCardExtractor",
    "PhoneExtractor",
    "ChineseTimeExtractor",
    "ChineseNumberExtractor",
    "PersonNameExtractor",
    "RegexEntityExtractor",
    "LookupEntityExtractor",
    "EntitySynonymMapper",
)


def default_registry() -> Registry:
    reg = Registry()
    reg.register(ComponentSpec(
        "ChineseNormalizer", ChineseNormalizer, ChineseNormalizer.from_disk,
        {"traditional_to_simplified": True, "lowercase": True}, ("normalized",), (),
    ))
    reg.register(ComponentSpec(
        "JiebaTokenizer", JiebaTokenizer, JiebaTokenizer.from_disk, {"dictionary_path": None}, ("tokens",), (),
        rasa_ignored=("intent_tokenization_flag", "intent_split_symbol", "token_pattern", "prefix_separator_symbol"),
    ))
    for name in RULE_EXTRACTORS:
        reg.register(_rule_spec(name))
    reg.register(ComponentSpec(
        "CRFEntityExtractor", CRFEntityExtractor, CRFEntityExtractor.from_disk, CRF_DEFAULTS, ("entities",), ("tokens",),
        rasa_ignored=("BILOU_flag", "features", "L1_c", "L2_c", "split_entities_by_comma"),
    ))
    reg.register(ComponentSpec(
        "IntentClassifier", IntentClassifier, IntentClassifier.from_disk, INTENT_DEFAULTS, ("intent",), ("tokens",),
    ))
    reg.register(ComponentSpec(
        "FallbackClassifier", FallbackClassifier, FallbackClassifier.from_disk, FALLBACK_DEFAULTS, ("intent",), ("intent",),
    ))
    # Rasa names: what each becomes here
    absorbed = "absorbed: IntentClassifier builds its own sparse features / 已由 IntentClassifier 的特征涵盖"
    reg.alias("CountVectorsFeaturizer", (), absorbed)
    reg.alias("LexicalSyntacticFeaturizer", (), absorbed)
    reg.alias("RegexFeaturizer", (), "regexes are used by RegexEntityExtractor / 正则由 RegexEntityExtractor 使用")
    reg.alias("DIETClassifier", ("IntentClassifier", "CRFEntityExtractor"),
              "replaced by IntentClassifier + CRFEntityExtractor / 由 IntentClassifier + CRFEntityExtractor 替代")
    for name, reason in {
        "WhitespaceTokenizer": "Chinese has no spaces; use JiebaTokenizer",
        "SpacyNLP": "no spaCy language model is shipped offline",
        "SpacyTokenizer": "use JiebaTokenizer",
        "SpacyFeaturizer": "no spaCy vectors offline",
        "SpacyEntityExtractor": "no spaCy NER model offline",
        "MitieNLP": "MITIE is not supported",
        "MitieTokenizer": "MITIE is not supported",
        "MitieFeaturizer": "MITIE is not supported",
        "MitieEntityExtractor": "MITIE is not supported",
        "MitieIntentClassifier": "MITIE is not supported",
        "ConveRTFeaturizer": "needs a download",
        "LanguageModelFeaturizer": "needs a download; IntentClassifier uses an offline sentence encoder",
        "DucklingEntityExtractor": "use ChineseTimeExtractor / ChineseNumberExtractor",
        "ResponseSelector": "retrieval intents are answered by the knowledge base",
        "KeywordIntentClassifier": "use IntentClassifier",
        "SklearnIntentClassifier": "use IntentClassifier",
        "LogisticRegressionClassifier": "use IntentClassifier",
    }.items():
        reg.unsupported(name, reason)
    return reg
