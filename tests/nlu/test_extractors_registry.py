"""The registry others build the pipeline from, overlap resolution, and all extractors on one message."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import EXTRACTORS, resolve_overlaps
from nlu.normalize import normalize
from nlu.types import Entity

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
SETTINGS: dict[str, dict[str, object]] = {
    "RegexEntityExtractor": {"patterns": [{"name": "case_no", "pattern": r"\bzw\d{4}\b"}]},
    "LookupEntityExtractor": {"tables": {"district": ["朝阳区"], "service": ["社保卡补办"]}},
    "EntitySynonymMapper": {"synonyms": {"社保卡补办": "社会保障卡补领"}},
}


def ent(entity: str, start: int, end: int, value: object = None, extractor: str = "x") -> Entity:
    return Entity(entity=entity, value=value, start=start, end=end, text="", extractor=extractor)


def test_registry_names_match_component_names() -> None:
    assert set(EXTRACTORS) == {
        "IdCardExtractor",
        "PhoneExtractor",
        "ChineseTimeExtractor",
        "ChineseNumberExtractor",
        "PersonNameExtractor",
        "RegexEntityExtractor",
        "LookupEntityExtractor",
        "EntitySynonymMapper",
    }
    assert all(cls.name == name for name, cls in EXTRACTORS.items())


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_every_extractor_builds_with_defaults_and_rejects_unknown_settings(name: str) -> None:
    extractor = EXTRACTORS[name]()
    assert extractor.extract(normalize(""), NOW) == []
    with pytest.raises(ValueError, match="no_such_setting"):
        EXTRACTORS[name](no_such_setting=1)


def test_id_beats_phone_and_number_inside_it() -> None:
    kept = resolve_overlaps([ent("phone", 6, 17), ent("number", 0, 18), ent("id_number", 0, 18)])
    assert [e.entity for e in kept] == ["id_number"]


def test_invalid_id_still_beats_phone_inside_it() -> None:
    bad_id = Entity("id_number", "x", 0, 18, "", "x", valid=False, error="e")
    assert resolve_overlaps([ent("phone", 6, 17), bad_id]) == [bad_id]


def test_specific_beats_longer_generic_and_longer_beats_shorter() -> None:
    kept = resolve_overlaps(
        [ent("service", 0, 14), ent("phone", 2, 13), ent("district", 20, 23), ent("district", 20, 22)]
    )
    assert [(e.entity, e.start, e.end) for e in kept] == [("phone", 2, 13), ("district", 20, 23)]


def test_amount_beats_number_and_time_beats_number() -> None:
    kept = resolve_overlaps(
        [ent("number", 0, 4), ent("amount", 0, 5), ent("number", 8, 9), ent("time", 6, 10)]
    )
    assert [e.entity for e in kept] == ["amount", "time"]


def test_same_span_twice_is_reported_once_first_wins() -> None:
    rule, crf = ent("district", 0, 3, extractor="rule"), ent("district", 0, 3, extractor="crf")
    assert resolve_overlaps([rule, crf]) == [rule]


def test_all_extractors_on_one_message() -> None:
    text = "我叫张三，身份證１１０１０１１９９００３０７１２３３，電話139-1234-5678，下週三上午去朝陽區辦社保卡补办，案號ZW0012，押金两千元"
    doc = normalize(text)
    found: list[Entity] = []
    for name, cls in EXTRACTORS.items():
        found += cls(**SETTINGS.get(name, {})).extract(doc, NOW)
    mapper = EXTRACTORS["EntitySynonymMapper"](**SETTINGS["EntitySynonymMapper"])
    kept = mapper.map(resolve_overlaps(found))
    assert [(e.entity, e.value) for e in kept] == [
        ("person_name", "张三"),
        ("id_number", "110101199003071233"),
        ("phone", "13912345678"),
        ("time", "2026-12-02T09:00:00+08:00"),
        ("district", "朝阳区"),
        ("service", "社会保障卡补领"),
        ("case_no", "ZW0012"),
        ("amount", 2000),
    ]
    for e in kept:
        assert text[e.start : e.end] == e.text
