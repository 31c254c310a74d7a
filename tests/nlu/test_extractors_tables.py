"""RegexEntityExtractor, LookupEntityExtractor and EntitySynonymMapper: the extractors fed by training data."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import EntitySynonymMapper, LookupEntityExtractor, RegexEntityExtractor
from nlu.extractors.regex import chinese_aware
from nlu.normalize import normalize
from nlu.types import Entity

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
TABLES = {
    "district": ["朝阳区", "海淀区", "东城区", "朝阳门街道"],
    "service": ["社保卡", "社保卡补办", "居住证", "WeChat"],
}


def lookup(text: str, **settings: object) -> list[tuple[str, str, str]]:
    ex = LookupEntityExtractor(tables=TABLES, **settings)
    return [(e.entity, e.value, e.text) for e in ex.extract(normalize(text), NOW)]


def regex(text: str, patterns: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    ex = RegexEntityExtractor(patterns=patterns)
    return [(e.entity, e.value, e.text) for e in ex.extract(normalize(text), NOW)]


# --- regex --------------------------------------------------------------------------------------------------


def test_rasa_pattern_with_word_boundaries_works_in_chinese() -> None:
    patterns = [{"name": "postcode", "pattern": r"\b\d{6}\b"}]
    assert regex("邮编100020的地址", patterns) == [("postcode", "100020", "100020")]
    assert regex("编号1000201", patterns) == []


def test_plain_python_word_boundary_would_fail_here() -> None:
    import re

    assert re.search(r"\b\d{6}\b", "邮编100020的") is None  # why chinese_aware exists
    assert re.search(chinese_aware(r"\b\d{6}\b"), "邮编100020的")


def test_backspace_in_a_class_and_escaped_backslash_are_left_alone() -> None:
    assert chinese_aware(r"[\b]") == r"[\b]"
    assert chinese_aware(r"\\b") == r"\\b"
    assert chinese_aware(r"[]\b]x\b").endswith("x" + chinese_aware(r"\b"))


def test_regex_matches_normalised_text_with_original_offsets() -> None:
    patterns = [{"name": "case_no", "pattern": r"[a-z]{2}\d{4}"}]
    text = "案件號ＡＢ１２３４。"
    [e] = RegexEntityExtractor(patterns=patterns).extract(normalize(text), NOW)
    assert (e.entity, e.value, e.text) == ("case_no", "AB1234", "ＡＢ１２３４")
    assert text[e.start : e.end] == e.text


def test_traditional_pattern_matches() -> None:
    assert regex("办理护照", [{"name": "doc", "pattern": "護照"}]) == [("doc", "护照", "护照")]


def test_demo_data_case_number_keeps_its_case() -> None:
    assert regex("我的案件编号是YZ-20260001", [{"name": "case_number", "pattern": r"YZ-\d{8}"}]) == [
        ("case_number", "YZ-20260001", "YZ-20260001")
    ]


def test_rasa_settings_case_sensitive_and_use_regexes() -> None:
    patterns = [{"name": "code", "pattern": r"[A-Z]{2}\d{2}"}]
    sensitive = RegexEntityExtractor(patterns=patterns, case_sensitive=True)
    assert [e.value for e in sensitive.extract(normalize("ab12 ＣＤ３４"), NOW)] == ["CD34"]
    assert RegexEntityExtractor(patterns=patterns, use_regexes=False).extract(normalize("CD34"), NOW) == []
    assert RegexEntityExtractor(patterns=patterns, use_lookup_tables=False).patterns
    with pytest.raises(ValueError, match="LookupEntityExtractor"):
        RegexEntityExtractor(patterns=patterns, use_lookup_tables=True)


def test_bad_patterns_are_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="broken"):
        RegexEntityExtractor(patterns=[{"name": "broken", "pattern": "(unclosed"}])
    with pytest.raises(ValueError, match="pattern"):
        RegexEntityExtractor(patterns=[{"name": "x"}])
    with pytest.raises(ValueError, match="regexes"):
        RegexEntityExtractor(regexes=[])


# --- lookup -------------------------------------------------------------------------------------------------


def test_longest_match_wins() -> None:
    assert lookup("我要社保卡补办") == [("service", "社保卡补办", "社保卡补办")]
    assert lookup("我要办社保卡") == [("service", "社保卡", "社保卡")]


def test_longest_match_wins_across_positions() -> None:
    assert lookup("去朝阳门街道办") == [("district", "朝阳门街道", "朝阳门街道")]


def test_traditional_and_full_width_input() -> None:
    text = "在海澱區補辦社保卡"
    assert lookup(text) == [("district", "海淀区", "海澱區"), ("service", "社保卡", "社保卡")]
    assert lookup("ｗｅｃｈａｔ支付") == [("service", "WeChat", "ｗｅｃｈａｔ")]


def test_latin_values_need_word_boundaries() -> None:
    assert lookup("mywechatpay") == []


def test_suffixless_only_when_allowed() -> None:
    assert lookup("我在朝阳住") == []
    assert lookup("我在朝阳住", allow_suffixless=["朝阳区"]) == [("district", "朝阳区", "朝阳")]
    assert lookup("我在朝阳区住", allow_suffixless=["朝阳区"]) == [("district", "朝阳区", "朝阳区")]
    assert lookup("海淀", allow_suffixless=["朝阳区"]) == []


def test_lookup_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="in no table"):
        LookupEntityExtractor(tables=TABLES, allow_suffixless=["西城区"])
    with pytest.raises(ValueError, match="list"):
        LookupEntityExtractor(tables={"district": "朝阳区"})
    with pytest.raises(ValueError, match="table"):
        LookupEntityExtractor(table={})


# --- synonyms -----------------------------------------------------------------------------------------------


def _entity(value: object, entity: str = "service") -> Entity:
    return Entity(entity=entity, value=value, start=0, end=2, text=str(value), extractor="x")


def test_synonyms_map_values_normalised() -> None:
    mapper = EntitySynonymMapper(synonyms={"社保卡": "社会保障卡", "身份證": "居民身份证"})
    out = mapper.map([_entity("社保卡"), _entity("身份证"), _entity("居住证"), _entity(5, "number")])
    assert [e.value for e in out] == ["社会保障卡", "居民身份证", "居住证", 5]
    assert out[0].additional_info == {"synonym_of": "社保卡"}
    assert mapper.extract(normalize("社保卡"), NOW) == []


def test_synonym_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="synonym"):
        EntitySynonymMapper(synonym={})
    with pytest.raises(ValueError, match="string"):
        EntitySynonymMapper(synonyms={"a": 1})
