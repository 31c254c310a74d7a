"""The domain (``domain.yml``) as typed, frozen values.

``Domain.load(path)`` reads a file or a directory of ``.yml`` files (merged as Rasa does) through
``assistant.rasa_yaml``; ``Domain.from_dict`` validates content. Invalid content raises ``DomainError`` naming the
file and the reason; features the engine does not support are either an error (when ignoring them would change
behaviour) or listed in ``Domain.warnings`` by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.tracker import REQUESTED_SLOT


class DomainError(ValueError):
    """Invalid domain content; the message names the file and the reason (Chinese and English)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


SLOT_TYPES = ("text", "bool", "categorical", "float", "list", "any")
MAPPING_TYPES = ("from_entity", "from_text", "from_intent", "from_trigger_intent", "custom")
KNOWN_KEYS = {"version", "intents", "entities", "slots", "responses", "forms", "actions", "session_config", "config"}
# keys Rasa accepts that change nothing we do, or that we cannot honour; reported, never silently dropped
UNSUPPORTED_KEYS = {"e2e_actions": "end-to-end actions (e2e_actions)"}


@dataclass(frozen=True)
class Intent:
    name: str
    # None: every entity is used; otherwise the entity names this intent keeps
    use_entities: tuple[str, ...] | None = None
    ignore_entities: tuple[str, ...] = ()

    def uses_entity(self, entity: str) -> bool:
        if entity in self.ignore_entities:
            return False
        return self.use_entities is None or entity in self.use_entities


@dataclass(frozen=True)
class EntityDef:
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    influence_conversation: bool = True


@dataclass(frozen=True)
class MappingCondition:
    active_loop: str | None
    requested_slot: str | None = None


@dataclass(frozen=True)
class SlotMapping:
    type: str
    entity: str | None = None
    role: str | None = None
    group: str | None = None
    intent: tuple[str, ...] = ()
    not_intent: tuple[str, ...] = ()
    value: Any = None
    action: str | None = None  # for ``custom`` mappings
    conditions: tuple[MappingCondition, ...] = ()


@dataclass(frozen=True)
class SlotDef:
    name: str
    type: str
    mappings: tuple[SlotMapping, ...] = ()
    initial_value: Any = None
    influence_conversation: bool = True
    values: tuple[str, ...] = ()  # categorical
    min_value: float = 0.0
    max_value: float = 1.0


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class SlotCondition:
    name: str
    value: Any


@dataclass(frozen=True)
class ResponseVariation:
    text: str | None = None
    buttons: tuple[Button, ...] = ()
    image: str | None = None
    custom: Mapping[str, Any] | None = None
    channel: str | None = None
    condition: tuple[SlotCondition, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FormDef:
    name: str
    required_slots: tuple[str, ...] = ()
    ignored_intents: tuple[str, ...] = ()
    # anything else under the form (our service-form extensions), for the forms package to interpret
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionConfig:
    # minutes of inactivity after which a new session starts; 0 means never
    session_expiration_time: float = 60.0
    carry_over_slots_to_new_session: bool = True


@dataclass(frozen=True)
class Domain:
    intents: Mapping[str, Intent] = field(default_factory=dict)
    entities: Mapping[str, EntityDef] = field(default_factory=dict)
    slots: Mapping[str, SlotDef] = field(default_factory=dict)
    responses: Mapping[str, tuple[ResponseVariation, ...]] = field(default_factory=dict)
    forms: Mapping[str, FormDef] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    session_config: SessionConfig = field(default_factory=SessionConfig)
    warnings: tuple[str, ...] = ()

    @staticmethod
    def load(path: str | Path) -> Domain:
        from assistant.rasa_yaml import read_domain_data

        data, source = read_domain_data(Path(path))
        return Domain.from_dict(data, source)

    @staticmethod
    def from_dict(data: Mapping[str, Any] | None, source: str = "domain.yml") -> Domain:
        return _parse_domain(dict(data or {}), source)

    @property
    def action_names(self) -> tuple[str, ...]:
        """Every action the domain names: responses, forms and declared actions, in that order."""
        names = [n for n in self.responses if n.startswith("utter_")]
        names += [n for n in self.forms if n not in names]
        names += [n for n in self.actions if n not in names]
        return tuple(names)

    @property
    def slot_defaults(self) -> dict[str, Any]:
        out = {name: s.initial_value for name, s in self.slots.items()}
        out.setdefault(REQUESTED_SLOT, None)
        return out

    def intent(self, name: str) -> Intent:
        return self.intents.get(name) or Intent(name)


# --- parsing ------------------------------------------------------------------------------------------------


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _parse_intents(raw: Any, source: str) -> dict[str, Intent]:
    out: dict[str, Intent] = {}
    for item in raw or []:
        if isinstance(item, str):
            out[item] = Intent(item)
        elif isinstance(item, dict) and len(item) == 1:
            name, props = next(iter(item.items()))
            props = props or {}
            use = props.get("use_entities", True)
            use_entities: tuple[str, ...] | None
            if use is True:
                use_entities = None
            elif use is False or use == []:
                use_entities = ()
            else:
                use_entities = _as_tuple(use)
            out[str(name)] = Intent(str(name), use_entities, _as_tuple(props.get("ignore_entities")))
        else:
            raise DomainError(source, f"intents: bad entry {item!r} / 意图条目格式错误")
    return out


def _parse_entities(raw: Any, source: str) -> dict[str, EntityDef]:
    out: dict[str, EntityDef] = {}
    for item in raw or []:
        if isinstance(item, str):
            out[item] = EntityDef(item)
        elif isinstance(item, dict) and len(item) == 1:
            name, props = next(iter(item.items()))
            props = props or {}
            out[str(name)] = EntityDef(
                str(name),
                _as_tuple(props.get("roles")),
                _as_tuple(props.get("groups")),
                bool(props.get("influence_conversation", True)),
            )
        else:
            raise DomainError(source, f"entities: bad entry {item!r} / 实体条目格式错误")
    return out


def _parse_mapping(slot: str, raw: Any, source: str) -> SlotMapping:
    if not isinstance(raw, dict) or "type" not in raw:
        raise DomainError(source, f"slots.{slot}.mappings: each mapping needs a type / 映射缺少 type")
    kind = raw["type"]
    if kind not in MAPPING_TYPES:
        raise DomainError(
            source, f"slots.{slot}: unsupported mapping type {kind!r} / 不支持的映射类型 (supported: {', '.join(MAPPING_TYPES)})"
        )
    if kind == "from_entity" and not raw.get("entity"):
        raise DomainError(source, f"slots.{slot}: from_entity needs 'entity' / from_entity 映射缺少 entity")
    if kind in ("from_intent", "from_trigger_intent") and "value" not in raw:
        raise DomainError(source, f"slots.{slot}: {kind} needs 'value' / {kind} 映射缺少 value")
    conditions = []
    for c in raw.get("conditions") or []:
        if not isinstance(c, dict) or "active_loop" not in c:
            raise DomainError(source, f"slots.{slot}: a condition needs active_loop / 条件缺少 active_loop")
        conditions.append(MappingCondition(c.get("active_loop"), c.get("requested_slot")))
    return SlotMapping(
        type=kind,
        entity=raw.get("entity"),
        role=raw.get("role"),
        group=raw.get("group"),
        intent=_as_tuple(raw.get("intent")),
        not_intent=_as_tuple(raw.get("not_intent")),
        value=raw.get("value"),
        action=raw.get("action"),
        conditions=tuple(conditions),
    )


def _parse_slots(raw: Any, source: str, warnings: list[str]) -> dict[str, SlotDef]:
    out: dict[str, SlotDef] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        raise DomainError(source, "slots: must be a mapping / slots 必须是映射")
    for name, props in raw.items():
        props = props or {}
        kind = props.get("type")
        if kind not in SLOT_TYPES:
            raise DomainError(
                source, f"slots.{name}: unsupported slot type {kind!r} / 不支持的槽位类型 (supported: {', '.join(SLOT_TYPES)})"
            )
        if "auto_fill" in props:
            warnings.append(f"{source}: slots.{name}.auto_fill is Rasa 2 syntax and is ignored; use mappings")
        values = _as_tuple(props.get("values"))
        if kind == "categorical" and not values:
            raise DomainError(source, f"slots.{name}: categorical slot needs values / 分类槽位需要 values")
        mappings = tuple(_parse_mapping(str(name), m, source) for m in props.get("mappings") or [])
        out[str(name)] = SlotDef(
            name=str(name),
            type=kind,
            mappings=mappings,
            initial_value=props.get("initial_value"),
            influence_conversation=bool(props.get("influence_conversation", kind != "any")),
            values=values,
            min_value=float(props.get("min_value", 0.0)),
            max_value=float(props.get("max_value", 1.0)),
        )
    return out


def _parse_condition(raw: Any, where: str, source: str) -> tuple[SlotCondition, ...]:
    out = []
    for c in raw or []:
        if not isinstance(c, dict) or c.get("type", "slot") != "slot" or "name" not in c:
            raise DomainError(source, f"{where}: conditions must be [{{type: slot, name, value}}] / 条件格式错误")
        out.append(SlotCondition(str(c["name"]), c.get("value")))
    return tuple(out)


def _parse_buttons(raw: Any, where: str, source: str) -> tuple[Button, ...]:
    out = []
    for b in raw or []:
        if not isinstance(b, dict) or "title" not in b:
            raise DomainError(source, f"{where}: a button needs a title / 按钮缺少 title")
        out.append(Button(str(b["title"]), str(b.get("payload", b["title"]))))
    return tuple(out)


def _parse_responses(raw: Any, source: str, warnings: list[str]) -> dict[str, tuple[ResponseVariation, ...]]:
    out: dict[str, tuple[ResponseVariation, ...]] = {}
    for name, variations in (raw or {}).items():
        if not isinstance(variations, list) or not variations:
            raise DomainError(source, f"responses.{name}: needs a list of variations / 回复需要变体列表")
        parsed = []
        for i, v in enumerate(variations):
            where = f"responses.{name}[{i}]"
            if isinstance(v, str):
                v = {"text": v}
            if not isinstance(v, dict):
                raise DomainError(source, f"{where}: bad variation / 回复变体格式错误")
            for key in ("elements", "attachment", "quick_replies"):
                if key in v:
                    warnings.append(f"{source}: {where}.{key} is not supported and is not rendered")
            parsed.append(
                ResponseVariation(
                    text=v.get("text"),
                    buttons=_parse_buttons(v.get("buttons"), where, source),
                    image=v.get("image"),
                    custom=v.get("custom"),
                    channel=v.get("channel"),
                    condition=_parse_condition(v.get("condition"), where, source),
                    metadata=v.get("metadata") or {},
                )
            )
        out[str(name)] = tuple(parsed)
    return out


def _parse_forms(raw: Any, source: str) -> dict[str, FormDef]:
    out: dict[str, FormDef] = {}
    for name, props in (raw or {}).items():
        props = props or {}
        required = props.get("required_slots", [])
        if isinstance(required, dict):
            raise DomainError(
                source, f"forms.{name}.required_slots: Rasa 2 mapping syntax is not supported; list slot names / 请使用槽位名列表"
            )
        extra = {k: v for k, v in props.items() if k not in ("required_slots", "ignored_intents")}
        out[str(name)] = FormDef(str(name), _as_tuple(required), _as_tuple(props.get("ignored_intents")), extra)
    return out


def _parse_session(raw: Any) -> SessionConfig:
    raw = raw or {}
    return SessionConfig(
        float(raw.get("session_expiration_time", 60)),
        bool(raw.get("carry_over_slots_to_new_session", True)),
    )


def _parse_domain(data: dict[str, Any], source: str) -> Domain:
    warnings: list[str] = []
    for key in data:
        if key in UNSUPPORTED_KEYS:
            warnings.append(f"{source}: {UNSUPPORTED_KEYS[key]} are not supported / 不支持，已忽略")
        elif key not in KNOWN_KEYS:
            raise DomainError(source, f"unknown key {key!r} / 未知的键")
    slots = _parse_slots(data.get("slots"), source, warnings)
    forms = _parse_forms(data.get("forms"), source)
    for form in forms.values():
        for slot in form.required_slots:
            if slot not in slots:
                raise DomainError(source, f"forms.{form.name}: required slot {slot!r} is not declared / 槽位未声明")
    intents = _parse_intents(data.get("intents"), source)
    entities = _parse_entities(data.get("entities"), source)
    for s in slots.values():
        for m in s.mappings:
            if m.entity and entities and m.entity not in entities:
                warnings.append(f"{source}: slots.{s.name} maps entity {m.entity!r} that is not declared")
    actions = tuple(str(a) if not isinstance(a, dict) else str(next(iter(a))) for a in data.get("actions") or [])
    return Domain(
        intents=intents,
        entities=entities,
        slots=slots,
        responses=_parse_responses(data.get("responses"), source, warnings),
        forms=forms,
        actions=actions,
        session_config=_parse_session(data.get("session_config")),
        warnings=tuple(warnings),
    )
