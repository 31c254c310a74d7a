"""Rasa 3.x ``nlu.yml`` training data, loaded into frozen values.

The YAML is composed (not just loaded) so every error can name the file and line Rasa users would look at.
Annotation forms accepted inside examples::

    [张三](person_name)                         Rasa 3
    [朝阳](district:朝阳区)                      Rasa 2 shorthand: entity with a synonym value
    [社保]{"entity": "service", "value": "社会保险", "role": "r", "group": "g"}
    [北京][{"entity": "city"}, {"entity": "place", "role": "to"}]   several annotations on one span

Entity offsets index the plain example text (annotations removed), exactly as Rasa's ``Message`` does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# Top-level keys Rasa accepts in a training-data file; the non-NLU ones are other loaders' business.
_TOP_LEVEL_KEYS = {"version", "nlu", "rules", "stories", "responses", "e2e_tests", "metadata"}
_ITEM_KINDS = ("intent", "synonym", "regex", "lookup")
_ITEM_KEYS = {*_ITEM_KINDS, "examples", "metadata"}
_ENTITY_DICT_KEYS = {"entity", "value", "role", "group"}

# Rasa's own annotation grammar (rasa/shared/nlu/training_data/entities_parser.py), extended with Chinese-safe
# character classes: the entity text may hold anything but brackets.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<entity>[^:()\[\]{}]+?)(?::(?P<value>[^()]+?))?\)"
    r"|(?P<dict>\{[^{}]*\})"
    r"|\[(?P<list>\s*\{.*?\}\s*(?:,\s*\{.*?\}\s*)*)\])"
)
_NAME = re.compile(r"^[^\s()\[\]{}:]+$")


class TrainingDataError(ValueError):
    """Training data Rasa would reject. The message names the file, the line and the reason."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class AnnotatedEntity:
    entity: str
    start: int
    end: int
    text: str
    value: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[AnnotatedEntity, ...] = ()
    metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RegexPattern:
    name: str
    pattern: str


@dataclass(frozen=True)
class LookupTable:
    name: str
    elements: tuple[str, ...]


@dataclass(frozen=True)
class TrainingData:
    examples: tuple[Example, ...] = ()
    # surface -> canonical value, from ``synonym:`` items and from annotations whose value differs from the text
    synonyms: tuple[tuple[str, str], ...] = ()
    regexes: tuple[RegexPattern, ...] = ()
    lookup_tables: tuple[LookupTable, ...] = ()
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def intents(self) -> tuple[str, ...]:
        return tuple(sorted({e.intent for e in self.examples}))

    @property
    def entity_types(self) -> tuple[str, ...]:
        return tuple(sorted({a.entity for e in self.examples for a in e.entities}))

    def synonym_map(self) -> dict[str, str]:
        return dict(self.synonyms)

    def lookup_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for table in self.lookup_tables:
            out.setdefault(table.name, []).extend(table.elements)
        return out

    def vocabulary_words(self) -> list[str]:
        """Words the tokenizer must keep whole: annotated entity texts, lookup elements, synonym surfaces."""
        words = {a.text for e in self.examples for a in e.entities}
        words.update(el for t in self.lookup_tables for el in t.elements)
        words.update(s for pair in self.synonyms for s in pair)
        return sorted(w for w in words if w.strip())

    def with_examples(self, examples: Iterable[Example]) -> TrainingData:
        return TrainingData(tuple(examples), self.synonyms, self.regexes, self.lookup_tables, self.sources)

    def merge(self, other: TrainingData) -> TrainingData:
        return TrainingData(
            self.examples + other.examples,
            _dedupe(self.synonyms + other.synonyms),
            _dedupe(self.regexes + other.regexes),
            self.lookup_tables + other.lookup_tables,
            self.sources + other.sources,
        )

    def fingerprint(self) -> str:
        payload = {
            "examples": [asdict(e) | {"metadata": None} for e in self.examples],
            "synonyms": self.synonyms,
            "regexes": [asdict(r) for r in self.regexes],
            "lookup": [asdict(t) for t in self.lookup_tables],
        }
        blob = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _dedupe(items: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------------- loading


def load_training_data(path: Path | str) -> TrainingData:
    """One ``nlu.yml`` file, or every ``*.yml``/``*.yaml`` under a directory (sorted, recursively)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml"} and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        raise TrainingDataError(str(path), None, "no such file or directory / 找不到训练数据文件")
    data = TrainingData()
    for file in files:
        # in a directory, as Rasa does, only files with an ``nlu:`` section are NLU data (stories, rules and
        # forms live alongside); a single file named explicitly is always parsed
        data = data.merge(parse_training_data(file.read_text(encoding="utf-8"), str(file), require_nlu=path.is_dir()))
    return data


def parse_training_data(text: str, source: str = "<string>", *, require_nlu: bool = False) -> TrainingData:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(err, "problem", None) or str(err)
        raise TrainingDataError(source, line, f"invalid YAML / YAML 格式错误: {problem}") from None
    if root is None:
        return TrainingData(sources=(source,))
    if not isinstance(root, MappingNode):
        raise TrainingDataError(source, _line(root), "the top level must be a mapping / 顶层必须是键值映射")
    if require_nlu and not any(isinstance(k, ScalarNode) and k.value == "nlu" for k, _ in root.value):
        return TrainingData()
    builder = _Builder(source)
    for key_node, value_node in root.value:
        key = _scalar(key_node, source)
        if key not in _TOP_LEVEL_KEYS:
            raise TrainingDataError(
                source, _line(key_node), f"unknown top-level key '{key}' / 未知的顶层键 '{key}'"
            )
        if key == "version" and not isinstance(value_node, ScalarNode):
            raise TrainingDataError(source, _line(value_node), "'version' must be a string such as \"3.1\"")
        if key == "nlu":
            builder.nlu_section(value_node)
    return builder.build()


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: Node, source: str) -> str:
    if not isinstance(node, ScalarNode):
        raise TrainingDataError(source, _line(node), "expected a plain value / 此处应为文本值")
    return str(node.value)


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.examples: list[Example] = []
        self.synonyms: list[tuple[str, str]] = []
        self.regexes: list[RegexPattern] = []
        self.lookups: list[LookupTable] = []

    def error(self, line: int | None, reason: str) -> TrainingDataError:
        return TrainingDataError(self.source, line, reason)

    def build(self) -> TrainingData:
        return TrainingData(
            tuple(self.examples),
            _dedupe(self.synonyms),
            _dedupe(self.regexes),
            tuple(self.lookups),
            (self.source,),
        )

    def nlu_section(self, node: Node) -> None:
        if isinstance(node, ScalarNode) and node.value in ("", None):
            return
        if not isinstance(node, SequenceNode):
            raise self.error(_line(node), "'nlu' must be a list of items / 'nlu' 必须是列表")
        for item in node.value:
            self.item(item)

    def item(self, node: Node) -> None:
        if not isinstance(node, MappingNode):
            raise self.error(_line(node), "an nlu item must be a mapping / nlu 条目必须是键值映射")
        fields: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, self.source)
            if key not in _ITEM_KEYS:
                raise self.error(_line(key_node), f"unknown key '{key}' in an nlu item / nlu 条目中未知的键 '{key}'")
            if key in fields:
                raise self.error(_line(key_node), f"duplicate key '{key}' / 重复的键 '{key}'")
            fields[key] = value_node
        kinds = [k for k in _ITEM_KINDS if k in fields]
        if not kinds:
            raise self.error(_line(node), "item has none of intent/synonym/regex/lookup / 条目缺少 intent、synonym、regex 或 lookup")
        if len(kinds) > 1:
            raise self.error(
                _line(node), f"item has two kinds ({', '.join(kinds)}) / 一个条目只能有一种类型: {', '.join(kinds)}"
            )
        kind = kinds[0]
        name = _scalar(fields[kind], self.source).strip()
        if not name:
            raise self.error(_line(fields[kind]), f"empty {kind} name / {kind} 名称为空")
        if "examples" not in fields:
            raise self.error(_line(node), f"{kind} '{name}' has no 'examples' / {kind} '{name}' 缺少 examples")
        lines = list(self.example_lines(fields["examples"], kind, name))
        if kind == "intent":
            for text, line, metadata in lines:
                self.examples.append(self.parse_example(text, name, line, metadata))
        elif kind == "synonym":
            self.synonyms.extend((text, name) for text, _, _ in lines)
        elif kind == "regex":
            for text, line, _ in lines:
                try:
                    re.compile(text)
                except re.error as err:
                    raise self.error(line, f"invalid regular expression for '{name}' / 正则表达式无效: {err}") from None
                self.regexes.append(RegexPattern(name, text))
        else:
            self.lookups.append(LookupTable(name, tuple(text for text, _, _ in lines)))

    def example_lines(self, node: Node, kind: str, name: str) -> Iterator[tuple[str, int, Mapping[str, Any] | None]]:
        if isinstance(node, ScalarNode):
            # a literal block (``|``) starts on the line after the key; other styles start on the key's line
            first = _line(node) + (1 if node.style in ("|", ">") else 0)
            found = False
            for offset, raw in enumerate(str(node.value).split("\n")):
                stripped = raw.strip()
                if not stripped:
                    continue
                if not stripped.startswith("-"):
                    raise self.error(
                        first + offset,
                        f"example of {kind} '{name}' must start with '- ' / 示例必须以 '- ' 开头: {stripped[:40]}",
                    )
                text = stripped[1:].strip()
                if text:
                    found = True
                    yield text, first + offset, None
            if not found:
                raise self.error(_line(node), f"{kind} '{name}' has no examples / {kind} '{name}' 没有示例")
            return
        if isinstance(node, SequenceNode):
            # Rasa's long form: examples as a list of {text, metadata}
            for entry in node.value:
                if isinstance(entry, MappingNode):
                    values = {_scalar(k, self.source): v for k, v in entry.value}
                    if "text" not in values:
                        raise self.error(_line(entry), "example has no 'text' / 示例缺少 text")
                    metadata = yaml.safe_load(yaml.serialize(values["metadata"])) if "metadata" in values else None
                    yield _scalar(values["text"], self.source).strip(), _line(values["text"]), metadata
                else:
                    yield _scalar(entry, self.source).strip(), _line(entry), None
            return
        raise self.error(_line(node), f"'examples' of {kind} '{name}' must be a block list / examples 格式错误")

    def parse_example(self, raw: str, intent: str, line: int, metadata: Mapping[str, Any] | None) -> Example:
        plain: list[str] = []
        entities: list[AnnotatedEntity] = []
        cursor = 0
        length = 0
        for match in _ANNOTATION.finditer(raw):
            between = raw[cursor : match.start()]
            self.check_no_brackets(between, raw, line)
            plain.append(between)
            length += len(between)
            text = match.group("text")
            start, end = length, length + len(text)
            for spec in self.annotation_specs(match, raw, line):
                value = spec.get("value", text)
                entities.append(
                    AnnotatedEntity(spec["entity"], start, end, text, str(value), spec.get("role"), spec.get("group"))
                )
                if str(value) != text:
                    self.synonyms.append((text, str(value)))
            plain.append(text)
            length = end
            cursor = match.end()
        tail = raw[cursor:]
        self.check_no_brackets(tail, raw, line)
        plain.append(tail)
        text = "".join(plain).strip()
        if not text:
            raise self.error(line, f"empty example for intent '{intent}' / 意图 '{intent}' 的示例为空")
        return Example(text, intent, tuple(entities), metadata)

    def check_no_brackets(self, fragment: str, raw: str, line: int) -> None:
        # Rasa would silently keep a stray bracket as text and train on garbage; we reject it.
        if any(c in fragment for c in "[]"):
            raise self.error(
                line,
                f"malformed entity annotation or unbalanced brackets / 实体标注格式错误或括号不匹配: {raw}",
            )

    def annotation_specs(self, match: re.Match[str], raw: str, line: int) -> list[dict[str, str]]:
        if match.group("entity") is not None:
            entity = match.group("entity").strip()
            spec = {"entity": entity}
            if match.group("value") is not None:
                spec["value"] = match.group("value").strip()
            specs = [spec]
        else:
            blob = match.group("dict") or f"[{match.group('list')}]"
            try:
                parsed = json.loads(blob)
            except json.JSONDecodeError as err:
                raise self.error(line, f"entity annotation is not valid JSON / 实体标注 JSON 无效: {err.msg}: {raw}") from None
            specs = parsed if isinstance(parsed, list) else [parsed]
        for spec in specs:
            if not isinstance(spec, dict) or "entity" not in spec:
                raise self.error(line, f"entity annotation has no 'entity' / 实体标注缺少 entity: {raw}")
            unknown = set(spec) - _ENTITY_DICT_KEYS
            if unknown:
                raise self.error(line, f"unknown annotation key(s) {sorted(unknown)} / 未知的标注键: {raw}")
            if not _NAME.match(str(spec["entity"])):
                raise self.error(line, f"invalid entity name '{spec['entity']}' / 实体名无效: {raw}")
        return [{k: str(v) for k, v in spec.items() if v is not None} for spec in specs]
