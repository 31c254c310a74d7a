"""Consistency of the bundled demo project: data/nlu.yml against domain.yml.

Standalone on purpose (PyYAML and a local check-digit helper only), so it does not depend on the NLU loader or
the dialogue engine and keeps the demo data honest while both are being written.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NLU_FILE = ROOT / "data" / "nlu.yml"
DOMAIN_FILE = ROOT / "domain.yml"

MIN_EXAMPLES = 15
# our own bar for the demo, above the project minimum, so the classifier has data to learn from
TARGET_EXAMPLES = 40

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# [text](entity) or [text]{"entity": ..., "value": ..., "role": ...}
_ANNOTATION = re.compile(r"\[(?P<text>[^\[\]]+)\](?:\((?P<short>[^()]+)\)|(?P<json>\{[^{}]*\}))")


def id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character for the first 17 digits of a resident ID number."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_valid_id_number(raw: str) -> bool:
    number = unicodedata.normalize("NFKC", raw).strip().upper()
    if not re.fullmatch(r"[1-9]\d{16}[\dX]", number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today() and id_check_digit(number[:17]) == number[17]


@dataclass(frozen=True)
class Annotation:
    text: str
    entity: str
    value: str
    role: str | None


def parse_annotations(example: str) -> list[Annotation]:
    out: list[Annotation] = []
    for m in _ANNOTATION.finditer(example):
        if m["short"] is not None:
            # Rasa 3 short form is [text](entity) only; entity:value was removed
            out.append(Annotation(m["text"], m["short"], m["text"], None))
        else:
            props = json.loads(m["json"])
            out.append(
                Annotation(m["text"], props["entity"], props.get("value", m["text"]), props.get("role"))
            )
    return out


def plain_text(example: str) -> str:
    return _ANNOTATION.sub(lambda m: m["text"], example)


def example_lines(block: str) -> list[str]:
    lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
    assert all(ln.startswith("- ") for ln in lines), [ln for ln in lines if not ln.startswith("- ")]
    return [ln[2:].strip() for ln in lines]


@pytest.fixture(scope="module")
def nlu() -> dict[str, Any]:
    return yaml.safe_load(NLU_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def domain() -> dict[str, Any]:
    return yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def intent_examples(nlu: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in nlu["nlu"]:
        if "intent" in item:
            assert item["intent"] not in out, f"intent {item['intent']} defined twice"
            out[item["intent"]] = example_lines(item["examples"])
    return out


@pytest.fixture(scope="module")
def annotations(intent_examples: dict[str, list[str]]) -> list[tuple[str, Annotation]]:
    return [
        (intent, a) for intent, exs in intent_examples.items() for ex in exs for a in parse_annotations(ex)
    ]


def domain_intents(domain: dict[str, Any]) -> set[str]:
    return {next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]}


def domain_entities(domain: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in domain["entities"]:
        if isinstance(e, dict):
            name, props = next(iter(e.items()))
            out[name] = set((props or {}).get("roles", []))
        else:
            out[e] = set()
    return out


def test_check_digit_helper_against_known_numbers() -> None:
    assert is_valid_id_number("11010519491231002X")
    assert is_valid_id_number("11010519491231002x")
    assert is_valid_id_number("１１０１０５１９４９１２３１００２Ｘ")  # full width
    assert not is_valid_id_number("110105194912310021")  # wrong check digit
    assert not is_valid_id_number("110101199003077578")  # a plausible-looking number whose check digit is 1
    assert not is_valid_id_number("11010519491331002X")  # month 13
    assert not is_valid_id_number("11010519491231002")  # 17 digits


def test_files_are_rasa_3_yaml(nlu: dict[str, Any], domain: dict[str, Any]) -> None:
    assert str(nlu["version"]) == "3.1"
    assert str(domain["version"]) == "3.1"
    kinds = Counter(
        next(k for k in item if k in ("intent", "synonym", "regex", "lookup")) for item in nlu["nlu"]
    )
    assert kinds["intent"] >= 32 and kinds["synonym"] and kinds["regex"] and kinds["lookup"]
    for item in nlu["nlu"]:
        assert isinstance(item["examples"], str), f"{item}: examples must be a '|' block"


def test_every_intent_has_enough_examples(intent_examples: dict[str, list[str]]) -> None:
    counts = {intent: len(exs) for intent, exs in intent_examples.items()}
    print("\nexamples per intent:", ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    print("total examples:", sum(counts.values()))
    assert len(counts) >= 32
    assert min(counts.values()) >= MIN_EXAMPLES, {k: v for k, v in counts.items() if v < MIN_EXAMPLES}
    assert min(counts.values()) >= TARGET_EXAMPLES, {k: v for k, v in counts.items() if v < TARGET_EXAMPLES}


def test_no_example_is_repeated(intent_examples: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for intent, exs in intent_examples.items():
        for ex in exs:
            key = re.sub(r"\s+", "", unicodedata.normalize("NFKC", plain_text(ex))).lower()
            key = key.strip(string.punctuation + "，。！？、；：")
            if key in seen:
                clashes.append((ex, seen[key], intent))
            seen[key] = intent
    assert not clashes


def test_annotations_are_well_formed(intent_examples: dict[str, list[str]]) -> None:
    bad = []
    for exs in intent_examples.values():
        for ex in exs:
            # every bracket belongs to an annotation: a stray '[' or '](' is a typo Rasa would reject or ignore
            rest = _ANNOTATION.sub("", ex)
            if any(ch in rest for ch in "[]{}") or "](" in rest:
                bad.append(ex)
    assert not bad


def test_annotated_id_numbers_have_valid_check_digits(annotations: list[tuple[str, Annotation]]) -> None:
    ids = [a.text for _, a in annotations if a.entity == "id_number"]
    assert len(ids) >= 15
    assert [i for i in ids if not is_valid_id_number(i)] == []


def test_annotated_phones_look_like_chinese_numbers(annotations: list[tuple[str, Annotation]]) -> None:
    phones = [unicodedata.normalize("NFKC", a.text) for _, a in annotations if a.entity == "phone"]
    digits = [re.sub(r"[\s\-+]", "", p) for p in phones]
    bad = [
        p for p, d in zip(phones, digits, strict=True) if not re.fullmatch(r"(86)?1[3-9]\d{9}|0\d{9,11}", d)
    ]
    assert phones and bad == []


def test_intents_match_domain(intent_examples: dict[str, list[str]], domain: dict[str, Any]) -> None:
    in_nlu, in_domain = set(intent_examples), domain_intents(domain)
    assert in_nlu - in_domain == set(), "intents in nlu.yml missing from domain.yml"
    assert in_domain - in_nlu == set(), "intents in domain.yml without training examples"


def test_annotated_entities_and_roles_are_declared(
    annotations: list[tuple[str, Annotation]], domain: dict[str, Any]
) -> None:
    declared = domain_entities(domain)
    assert {a.entity for _, a in annotations} - set(declared) == set()
    bad_roles = {(a.entity, a.role) for _, a in annotations if a.role and a.role not in declared[a.entity]}
    assert bad_roles == set()


def test_regexes_and_lookups_name_declared_entities(nlu: dict[str, Any], domain: dict[str, Any]) -> None:
    declared = domain_entities(domain)
    for item in nlu["nlu"]:
        for kind in ("regex", "lookup"):
            if kind in item:
                assert item[kind] in declared, f"{kind} {item[kind]} is not an entity in domain.yml"
        if "regex" in item:
            for pattern in example_lines(item["examples"]):
                assert r"\b" not in pattern, "\\b does not work between Chinese characters"
                re.compile(pattern)


def test_regexes_match_the_annotated_values(
    nlu: dict[str, Any], annotations: list[tuple[str, Annotation]]
) -> None:
    patterns = {
        item["regex"]: [re.compile(p) for p in example_lines(item["examples"])]
        for item in nlu["nlu"]
        if "regex" in item
    }
    for name, regexes in patterns.items():
        values = [unicodedata.normalize("NFKC", a.text) for _, a in annotations if a.entity == name]
        assert values, f"regex {name} has no annotated example"
        missed = [v for v in values if not any(r.fullmatch(v) for r in regexes)]
        assert missed == [], name


def test_lookup_tables_are_large_enough(nlu: dict[str, Any]) -> None:
    lookups = {item["lookup"]: example_lines(item["examples"]) for item in nlu["nlu"] if "lookup" in item}
    assert len(lookups["district"]) >= 8
    assert len(lookups["service"]) >= 30
    for name, values in lookups.items():
        assert len(values) == len(set(values)), f"lookup {name} repeats a value"


def test_synonym_targets_are_slot_values(nlu: dict[str, Any], domain: dict[str, Any]) -> None:
    """A categorical slot filled from an entity must accept what the synonym mapper turns the entity into."""
    synonyms = {item["synonym"] for item in nlu["nlu"] if "synonym" in item}
    categorical = {
        name: set(map(str, props["values"]))
        for name, props in domain["slots"].items()
        if props["type"] == "categorical"
    }
    assert {"丢失补领", "损坏换领", "到期换领"} <= synonyms & categorical["reason"]
    assert "购房" in synonyms & categorical["withdrawal_reason"]


def test_annotated_values_of_categorical_slots_are_allowed(
    annotations: list[tuple[str, Annotation]], domain: dict[str, Any]
) -> None:
    allowed: dict[str, set[str]] = {}
    for props in domain["slots"].values():
        if props["type"] != "categorical":
            continue
        for m in props.get("mappings", []):
            if m["type"] == "from_entity":
                allowed.setdefault(m["entity"], set()).update(map(str, props["values"]))
    bad = [
        (a.entity, a.text, a.value)
        for _, a in annotations
        if a.entity in allowed and a.value not in allowed[a.entity]
    ]
    assert bad == []


def test_slot_mappings_reference_declared_names(domain: dict[str, Any]) -> None:
    entities = domain_entities(domain)
    intents = domain_intents(domain)
    forms = set(domain["forms"])
    for slot, props in domain["slots"].items():
        for m in props["mappings"]:
            if m["type"] == "from_entity":
                assert m["entity"] in entities, slot
                assert m.get("role") is None or m["role"] in entities[m["entity"]], slot
            for key in ("intent", "not_intent"):
                names = m.get(key) or []
                names = [names] if isinstance(names, str) else names
                assert set(names) <= intents, (slot, key)
            for c in m.get("conditions", []):
                assert c["active_loop"] in forms, slot
                assert c.get("requested_slot") in (None, *domain["slots"]), slot


def test_forms_have_declared_slots_and_prompts(domain: dict[str, Any]) -> None:
    forms = domain["forms"]
    assert {
        "id_card_appointment",
        "social_security_card_loss_report",
        "residence_permit_application",
        "housing_fund_withdrawal_appointment",
    } <= set(forms)
    responses = domain["responses"]
    actions = set(domain["actions"])
    for form, props in forms.items():
        assert f"validate_{form}" in actions
        assert f"utter_confirm_{form}" in responses
        for slot in props["required_slots"]:
            assert slot in domain["slots"], (form, slot)
            assert f"utter_ask_{form}_{slot}" in responses or f"utter_ask_{slot}" in responses, (form, slot)


def test_response_placeholders_are_slots(domain: dict[str, Any]) -> None:
    slots = set(domain["slots"])
    for name, variations in domain["responses"].items():
        for v in variations:
            fields = {f for _, f, _, _ in string.Formatter().parse(v.get("text") or "") if f}
            assert fields <= slots, (name, fields - slots)
            for cond in v.get("condition", []):
                assert cond["type"] == "slot" and cond["name"] in slots, name


def test_personal_data_appears_only_in_form_confirmations(domain: dict[str, Any]) -> None:
    """The form engine masks ID and phone only for the fields of the form it confirms (assistant/forms/masking.py),
    so a confirmation may name only its own form's fields and no other response may name a sensitive slot."""
    responses = domain["responses"]
    for name, variations in responses.items():
        for v in variations:
            fields = {f for _, f, _, _ in string.Formatter().parse(v.get("text") or "") if f}
            form = name.removeprefix("utter_confirm_")
            if form != name:
                assert fields <= set(domain["forms"][form]["required_slots"]), name
            else:
                assert not fields & {"id_number", "phone"}, name


def test_form_extensions_refer_to_the_form_fields(domain: dict[str, Any]) -> None:
    for form, props in domain["forms"].items():
        required = set(props["required_slots"])
        assert set(props.get("optional_slots", [])) <= required, form
        for slot in required:
            values = domain["slots"][slot].get("values", [])
            assert len(values) == len(set(values)), f"slot {slot} repeats a value"
        for slot, cfg in (props.get("fields") or {}).items():
            assert slot in required, (form, slot)
            values = set(map(str, cfg.get("values") or domain["slots"][slot].get("values", [])))
            assert set(map(str, (cfg.get("synonyms") or {}))) <= values, (form, slot)


def test_button_payloads_name_declared_intents_and_entities(domain: dict[str, Any]) -> None:
    # Rasa reads /intent{"name": value} as entities of that message; slots are filled from them by the mappings
    intents = domain_intents(domain)
    entities = domain_entities(domain)
    for name, variations in domain["responses"].items():
        for v in variations:
            for button in v.get("buttons", []):
                m = re.fullmatch(r"/(\w+)(\{.*\})?", button["payload"])
                assert m and m[1] in intents, (name, button)
                if m[2]:
                    assert set(json.loads(m[2])) <= set(entities), (name, button)


def test_session_config(domain: dict[str, Any]) -> None:
    assert domain["session_config"] == {
        "session_expiration_time": 60,
        "carry_over_slots_to_new_session": True,
    }


def test_each_annotated_phrase_has_one_entity_type(annotations: list[tuple[str, Annotation]]) -> None:
    # 离职 was once `reason` in one example and `withdrawal_reason` in another: the CRF learns noise from that
    types: dict[str, set[str]] = {}
    for _, a in annotations:
        types.setdefault(unicodedata.normalize("NFKC", a.text), set()).add(a.entity)
    assert {text: kinds for text, kinds in types.items() if len(kinds) > 1} == {}
    assert types["离职"] == {"withdrawal_reason"}


_ASPECT = re.compile(r"要什么材料|需要哪些材料|要带|在哪里办|在哪办|在哪个窗口|去哪里|去哪办|去哪个|去哪拿|去哪开|收费吗|要钱吗|要多少钱|收不收费")


def test_aspect_questions_use_the_aspect_intents(intent_examples: dict[str, list[str]]) -> None:
    # the labelling rule at the top of data/nlu.yml: "办社保卡要什么材料" is ask_materials (service as an entity)
    aspect = {"ask_materials", "ask_location", "ask_fee", "ask_office_hours", "ask_progress", "complain",
              "out_of_scope", "chitchat"}
    stray = [(i, plain_text(e)) for i, exs in intent_examples.items() if i not in aspect for e in exs
             if _ASPECT.search(plain_text(e))]
    assert stray == []
