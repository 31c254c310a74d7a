"""A service form as the loop sees it: an ordered list of typed fields, read from the domain.

A Rasa form only lists ``required_slots``; the service-form extensions live next to it in ``domain.yml`` and reach
us through ``FormDef.extra``::

    forms:
      id_card_appointment:
        required_slots: [applicant_name, id_number, phone, appointment_date, district, service_type, remark]
        title: 身份证换领预约            # shown in prompts and the confirmation
        title_en: ID card appointment
        optional_slots: [remark]         # "跳过"/"不填" leaves them empty
        confirm: true                    # show the data and wait for 确认 before submitting (default)
        trigger_intents: [id_card_renewal]  # start the form on these intents (rules may start it too)
        submission_target: id-card/appointments  # relative to forms.submission.url, or a full URL
        fields:
          appointment_date: {kind: working_day, label: 预约日期, max_days_ahead: 60}
          district: {kind: lookup, label: 办理区县}
          service_type: {kind: choice, synonyms: {换领: [到期换证, 过期]}}

Anything not given is inferred: the kind from the slot's entity mapping or type, the label from the slot name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.domain import Domain, DomainError, SlotDef

KINDS = ("id_number", "phone", "working_day", "lookup", "choice", "name", "text", "number")
SENSITIVE_KINDS = ("id_number", "phone")

# entity names of our NLU extractors (and common Rasa project names) and the field kind they imply
_KIND_BY_ENTITY = {
    "id_number": "id_number",
    "id_card": "id_number",
    "phone": "phone",
    "phone_number": "phone",
    "mobile": "phone",
    "time": "working_day",
    "date": "working_day",
    "person": "name",
    "person_name": "name",
    "name": "name",
}

# labels for slot names the demo and most government forms use; anything else shows its slot name
_DEFAULT_LABELS = {
    "applicant_name": ("姓名", "name"),
    "name": ("姓名", "name"),
    "id_number": ("身份证号", "ID number"),
    "phone": ("联系电话", "phone"),
    "appointment_date": ("预约日期", "appointment date"),
    "district": ("办理区县", "district"),
    "residence_address": ("居住地址", "residence address"),
    "address": ("地址", "address"),
    "remark": ("备注", "remark"),
}


@dataclass(frozen=True)
class FieldSpec:
    slot: str
    kind: str
    label: str
    label_en: str
    optional: bool = False
    # canonical values of a lookup or choice, in display order
    values: tuple[str, ...] = ()
    # normalised synonym -> canonical value (canonical values map to themselves)
    synonyms: Mapping[str, str] = field(default_factory=dict)
    # extra words that name this field in "修改电话" / "电话写错了"
    aliases: tuple[str, ...] = ()
    max_days_ahead: int = 90
    max_length: int = 200

    @property
    def sensitive(self) -> bool:
        return self.kind in SENSITIVE_KINDS

    @property
    def names(self) -> tuple[str, ...]:
        """Every way a citizen may name this field, longest first (so 联系电话 wins over 电话)."""
        words = {self.label, *self.aliases}
        words |= set(_KIND_ALIASES.get(self.kind, ()))
        return tuple(sorted((w for w in words if w), key=len, reverse=True))


_KIND_ALIASES = {
    "id_number": ("身份证号码", "身份证号", "身份证", "证件号码", "证件号"),
    "phone": ("联系电话", "手机号码", "手机号", "电话号码", "电话", "手机", "联系方式"),
    "working_day": ("日期", "时间", "预约时间", "哪天"),
    "name": ("姓名", "名字"),
    "lookup": (),
    "choice": (),
}


@dataclass(frozen=True)
class FormSpec:
    name: str
    title: str
    title_en: str
    fields: tuple[FieldSpec, ...]
    confirm: bool = True
    submit: bool = True
    # intents that start this form when no form is active (rules in data/rules.yml may start it too)
    trigger_intents: tuple[str, ...] = ()
    # where this form is posted: None for forms.submission.url itself, a path relative to it, or a full URL
    submission_target: str | None = None

    def field(self, slot: str) -> FieldSpec | None:
        for f in self.fields:
            if f.slot == slot:
                return f
        return None

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(f.slot for f in self.fields)


def _infer_kind(slot: SlotDef) -> str:
    for m in slot.mappings:
        if m.type == "from_entity" and m.entity in _KIND_BY_ENTITY:
            return _KIND_BY_ENTITY[m.entity]
    if slot.name in _KIND_BY_ENTITY:
        return _KIND_BY_ENTITY[slot.name]
    if slot.type == "categorical":
        return "lookup" if "district" in slot.name or "region" in slot.name else "choice"
    if slot.type == "float":
        return "number"
    return "text"


def _synonyms(values: tuple[str, ...], raw: Any, where: str, source: str) -> dict[str, str]:
    from assistant.forms.text import fold

    out = {fold(v): v for v in values}
    if raw is None:
        return out
    if not isinstance(raw, Mapping):
        raise DomainError(source, f"{where}.synonyms: expected {{value: [synonym, ...]}} / 同义词格式错误")
    for canonical, words in raw.items():
        if values and str(canonical) not in values:
            raise DomainError(
                source, f"{where}.synonyms: {canonical!r} is not one of the values / 不是可选值"
            )
        for w in [words] if isinstance(words, str) else words or []:
            out[fold(str(w))] = str(canonical)
    return out


def form_spec(domain: Domain, form_name: str, source: str = "domain.yml") -> FormSpec:
    form = domain.forms.get(form_name)
    if form is None:
        raise DomainError(source, f"forms: no form named {form_name!r} / 没有这个表单")
    extra = dict(form.extra)
    known = {"title", "title_en", "optional_slots", "fields", "confirm", "submit", "trigger_intents",
             "submission_target"}  # fmt: skip
    unknown = sorted(set(extra) - known)
    if unknown:
        raise DomainError(source, f"forms.{form_name}: unknown key(s) {', '.join(unknown)} / 未知的表单设置")
    optional = set(extra.get("optional_slots") or ())
    settings: Mapping[str, Any] = extra.get("fields") or {}
    for slot_name in list(optional) + list(settings):
        if slot_name not in form.required_slots:
            raise DomainError(
                source, f"forms.{form_name}: {slot_name!r} is not in required_slots / 不在必填槽位中"
            )
    fields = []
    for slot_name in form.required_slots:
        slot = domain.slots[slot_name]
        where = f"forms.{form_name}.fields.{slot_name}"
        cfg = dict(settings.get(slot_name) or {})
        bad = sorted(set(cfg) - {"kind", "label", "label_en", "values", "synonyms", "aliases", "max_days_ahead",
                                 "max_length", "optional"})  # fmt: skip
        if bad:
            raise DomainError(source, f"{where}: unknown key(s) {', '.join(bad)} / 未知的字段设置")
        kind = str(cfg.get("kind") or _infer_kind(slot))
        if kind not in KINDS:
            raise DomainError(
                source, f"{where}.kind: {kind!r} is not one of {', '.join(KINDS)} / 字段类型无效"
            )
        values = tuple(str(v) for v in cfg.get("values") or slot.values)
        if kind in ("lookup", "choice") and not values:
            raise DomainError(
                source, f"{where}: a {kind} field needs values (categorical slot or values:) / 缺少可选值"
            )
        label, label_en = _DEFAULT_LABELS.get(slot_name, (slot_name, slot_name))
        fields.append(
            FieldSpec(
                slot=slot_name,
                kind=kind,
                label=str(cfg.get("label") or label),
                label_en=str(cfg.get("label_en") or label_en),
                optional=bool(cfg.get("optional", slot_name in optional)),
                values=values,
                synonyms=_synonyms(values, cfg.get("synonyms"), where, source),
                aliases=tuple(str(a) for a in cfg.get("aliases") or ()),
                max_days_ahead=int(cfg.get("max_days_ahead", 90)),
                max_length=int(cfg.get("max_length", 200)),
            )
        )
    return FormSpec(
        name=form_name,
        title=str(extra.get("title") or form_name),
        title_en=str(extra.get("title_en") or form_name.replace("_", " ")),
        fields=tuple(fields),
        confirm=bool(extra.get("confirm", True)),
        submit=bool(extra.get("submit", True)),
        trigger_intents=tuple(str(i) for i in extra.get("trigger_intents") or ()),
        submission_target=str(extra["submission_target"]) if extra.get("submission_target") else None,
    )
