"""Reading Rasa 3.x YAML files: the domain (file or directory), rules, stories and test stories.

The only module of the engine that touches these files; everything else works on the typed values below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.domain import DomainError


class StoryError(ValueError):
    """Invalid rule/story content; names the file, the story and the reason."""


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DomainError(str(path), f"not valid YAML / YAML 格式错误: {err}") from None
    except OSError as err:
        raise DomainError(str(path), f"cannot read / 无法读取: {err}") from None


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return [path]


_LIST_KEYS = ("intents", "entities", "actions")
_DICT_KEYS = ("slots", "responses", "forms")


def read_domain_data(path: Path) -> tuple[dict[str, Any], str]:
    """One domain dict from a file or a directory of files; lists are unioned and mappings merged as in Rasa."""
    if not path.exists():
        raise DomainError(str(path), "domain not found / 找不到 domain 文件")
    merged: dict[str, Any] = {}
    for file in _yaml_files(path):
        data = read_yaml(file) or {}
        if not isinstance(data, dict):
            raise DomainError(str(file), "the top level must be a mapping / 顶层必须是键值映射")
        for key, value in data.items():
            if value is None:
                continue
            if key in _LIST_KEYS:
                seen = merged.setdefault(key, [])
                seen.extend(v for v in value if v not in seen)
            elif key in _DICT_KEYS:
                if not isinstance(value, dict):
                    raise DomainError(str(file), f"{key}: must be a mapping / 必须是映射")
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged, str(path)


# --- stories and rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityAnnotation:
    entity: str
    value: Any
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class UserStep:
    intent: str | None
    entities: tuple[EntityAnnotation, ...] = ()
    text: str | None = None  # the plain text, annotations removed
    # the story names entities explicitly (``entities:``); otherwise only annotations in text count
    line: int | None = None


@dataclass(frozen=True)
class ActionStep:
    name: str
    line: int | None = None


@dataclass(frozen=True)
class SlotStep:
    # (name, value, value_given): ``- slot_was_set: [name]`` only says the slot is set
    slots: tuple[tuple[str, Any, bool], ...]
    line: int | None = None


@dataclass(frozen=True)
class LoopStep:
    name: str | None
    line: int | None = None


@dataclass(frozen=True)
class CheckpointStep:
    name: str


@dataclass(frozen=True)
class OrStep:
    alternatives: tuple[UserStep | SlotStep, ...]


Step = UserStep | ActionStep | SlotStep | LoopStep | CheckpointStep | OrStep


@dataclass(frozen=True)
class Story:
    name: str
    steps: tuple[Step, ...]
    source: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    steps: tuple[Step, ...]
    condition: tuple[Step, ...] = ()
    conversation_start: bool = False
    wait_for_user_input: bool = True
    source: str = ""


@dataclass(frozen=True)
class StoryData:
    stories: tuple[Story, ...] = ()
    rules: tuple[Rule, ...] = ()
    # unsupported content found while reading, by name (end-to-end steps, unknown step keys)
    unsupported: tuple[str, ...] = field(default=())


_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<paren>[^)]+)\)|(?P<brace>\{[^}]*\}))")


def parse_annotated_text(text: str) -> tuple[str, tuple[EntityAnnotation, ...]]:
    """``我要换[身份证](service)`` -> ``我要换身份证`` and its entities (Rasa's markdown annotation)."""
    entities: list[EntityAnnotation] = []

    def repl(m: re.Match[str]) -> str:
        surface = m.group("text")
        if m.group("paren"):
            name, _, value = m.group("paren").partition(":")
            entities.append(EntityAnnotation(name.strip(), value.strip() or surface))
        else:
            try:
                spec = json.loads(m.group("brace"))
            except json.JSONDecodeError:
                return m.group(0)
            entities.append(
                EntityAnnotation(spec.get("entity", ""), spec.get("value", surface), spec.get("role"), spec.get("group"))
            )
        return surface

    plain = _ANNOTATION.sub(repl, text)
    return plain, tuple(entities)


def _entity_list(raw: Any) -> tuple[EntityAnnotation, ...]:
    out = []
    for e in raw or []:
        if isinstance(e, str):
            out.append(EntityAnnotation(e, None))
        elif isinstance(e, dict) and "entity" in e:
            out.append(EntityAnnotation(e["entity"], e.get("value"), e.get("role"), e.get("group")))
        elif isinstance(e, dict) and len(e) == 1:
            name, value = next(iter(e.items()))
            out.append(EntityAnnotation(str(name), value))
    return tuple(out)


def _slot_step(raw: Any) -> SlotStep:
    items: list[tuple[str, Any, bool]] = []
    for s in raw or []:
        if isinstance(s, str):
            items.append((s, None, False))
        elif isinstance(s, dict):
            items.extend((str(k), v, True) for k, v in s.items())
    return SlotStep(tuple(items))


def _parse_step(raw: Any, where: str, unsupported: list[str]) -> Step | None:
    if not isinstance(raw, dict):
        raise StoryError(f"{where}: a step must be a mapping / 步骤格式错误: {raw!r}")
    if "intent" in raw or "user" in raw:
        text, annotated = (None, ())
        if raw.get("user") is not None:
            text, annotated = parse_annotated_text(str(raw["user"]).strip())
        intent = raw.get("intent")
        if intent is None:
            unsupported.append(f"{where}: end-to-end user step (user text without intent) is not supported")
            return None
        entities = _entity_list(raw.get("entities")) or annotated
        return UserStep(str(intent), entities, text)
    if "action" in raw:
        return ActionStep(str(raw["action"]))
    if "bot" in raw:
        unsupported.append(f"{where}: end-to-end bot step (bot:) is not supported")
        return None
    if "slot_was_set" in raw:
        return _slot_step(raw["slot_was_set"])
    if "active_loop" in raw:
        return LoopStep(raw["active_loop"])
    if "checkpoint" in raw:
        return CheckpointStep(str(raw["checkpoint"]))
    if "or" in raw:
        alts = []
        for alt in raw["or"] or []:
            step = _parse_step(alt, where, unsupported)
            if isinstance(step, (UserStep, SlotStep)):
                alts.append(step)
        return OrStep(tuple(alts))
    unsupported.append(f"{where}: unknown step {sorted(raw)} is not supported")
    return None


def _parse_steps(raw: Any, where: str, unsupported: list[str]) -> tuple[tuple[Step, ...], bool]:
    """The steps, and whether all of them were supported."""
    out: list[Step] = []
    ok = True
    for i, step in enumerate(raw or []):
        parsed = _parse_step(step, f"{where} step {i + 1}", unsupported)
        if parsed is None:
            ok = False
        else:
            out.append(parsed)
    return tuple(out), ok


def parse_story_data(data: Any, source: str) -> StoryData:
    if data is None:
        return StoryData()
    if not isinstance(data, dict):
        raise StoryError(f"{source}: the top level must be a mapping / 顶层必须是键值映射")
    unsupported: list[str] = []
    stories, rules = [], []
    for item in data.get("stories") or []:
        name = str(item.get("story", "?"))
        steps, ok = _parse_steps(item.get("steps"), f"{source}: story '{name}'", unsupported)
        if ok:
            stories.append(Story(name, steps, source))
    for item in data.get("rules") or []:
        name = str(item.get("rule", "?"))
        where = f"{source}: rule '{name}'"
        steps, ok = _parse_steps(item.get("steps"), where, unsupported)
        condition, cond_ok = _parse_steps(item.get("condition"), where + " condition", unsupported)
        if ok and cond_ok:
            rules.append(
                Rule(
                    name,
                    steps,
                    condition,
                    bool(item.get("conversation_start", False)),
                    bool(item.get("wait_for_user_input", True)),
                    source,
                )
            )
    return StoryData(tuple(stories), tuple(rules), tuple(unsupported))


def merge(parts: Iterable[StoryData]) -> StoryData:
    stories: list[Story] = []
    rules: list[Rule] = []
    unsupported: list[str] = []
    for p in parts:
        stories += p.stories
        rules += p.rules
        unsupported += p.unsupported
    return StoryData(tuple(stories), tuple(rules), tuple(unsupported))


def load_story_files(paths: Iterable[Path]) -> StoryData:
    """Stories and rules from files or directories (Rasa's ``data/``); NLU-only files contribute nothing."""
    parts = []
    for path in paths:
        if not path.exists():
            continue
        for file in _yaml_files(path):
            data = read_yaml(file)
            if isinstance(data, dict) and ("stories" in data or "rules" in data):
                parts.append(parse_story_data(data, str(file)))
    return merge(parts)
