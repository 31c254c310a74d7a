"""Rasa 3.x nlu.yml loading: every annotation form, and errors that name file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.training_data import TrainingDataError, load_training_data, parse_training_data

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nlu"


def _one(example_line: str):
    data = parse_training_data(f'version: "3.1"\nnlu:\n- intent: x\n  examples: |\n    - {example_line}\n')
    return data.examples[0]


def test_plain_rasa3_annotation() -> None:
    ex = _one("我叫[张三](person_name)，要办社保")
    assert ex.text == "我叫张三，要办社保"
    (ent,) = ex.entities
    assert (ent.entity, ent.start, ent.end, ent.text, ent.value) == ("person_name", 2, 4, "张三", "张三")


def test_rasa2_shorthand_value_becomes_synonym() -> None:
    data = parse_training_data('nlu:\n- intent: x\n  examples: |\n    - 在[朝阳](district:朝阳区)办\n')
    (ent,) = data.examples[0].entities
    assert (ent.text, ent.value, ent.start, ent.end) == ("朝阳", "朝阳区", 1, 3)
    assert data.synonym_map() == {"朝阳": "朝阳区"}


def test_json_annotation_with_role_and_group() -> None:
    ex = _one('从[北京]{"entity": "city", "role": "from", "group": "1"}迁到[上海]{"entity": "city", "value": "上海市"}')
    assert ex.text == "从北京迁到上海"
    a, b = ex.entities
    assert (a.entity, a.role, a.group, a.start, a.end) == ("city", "from", "1", 1, 3)
    assert (b.value, b.start, b.end) == ("上海市", 5, 7)


def test_list_of_annotations_on_one_span() -> None:
    ex = _one('去[北京][{"entity": "city"}, {"entity": "place", "role": "to"}]办')
    assert ex.text == "去北京办"
    assert [(e.entity, e.role) for e in ex.entities] == [("city", None), ("place", "to")]


def test_mixed_width_traditional_and_english_kept_verbatim() -> None:
    ex = _one("我想查[社會保險](service)， ＩＤ是[ABC１２３](case_number) ok")
    assert ex.text == "我想查社會保險， ＩＤ是ABC１２３ ok"
    assert [ex.text[e.start : e.end] for e in ex.entities] == ["社會保險", "ABC１２３"]


def test_synonym_regex_lookup_and_long_examples() -> None:
    text = """version: "3.1"
nlu:
- intent: greet
  examples:
  - text: 你好
    metadata: {sentiment: neutral}
  - 嗨
- synonym: 社会保险
  examples: |
    - 社保
- regex: order_number
  examples: |
    - SB\\d{8}
- lookup: district
  examples: |
    - 朝阳区
    - 海淀区
"""
    data = parse_training_data(text, "x.yml")
    assert [e.text for e in data.examples] == ["你好", "嗨"]
    assert data.examples[0].metadata == {"sentiment": "neutral"}
    assert data.synonym_map() == {"社保": "社会保险"}
    assert data.regexes[0].pattern == "SB\\d{8}"
    assert data.lookup_map() == {"district": ["朝阳区", "海淀区"]}
    assert {"朝阳区", "社保", "社会保险"} <= set(data.vocabulary_words())


def test_directory_loads_only_files_with_nlu_section(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text("nlu:\n- intent: a\n  examples: |\n    - 你好\n", encoding="utf-8")
    (tmp_path / "stories.yml").write_text("version: '3.1'\nstories: []\n", encoding="utf-8")
    (tmp_path / "forms.yml").write_text("forms: {}\n", encoding="utf-8")
    assert [e.intent for e in load_training_data(tmp_path).examples] == ["a"]


def test_fixture_project_loads() -> None:
    data = load_training_data(FIXTURES / "project" / "data")
    assert len(data.intents) == 6 and len(data.examples) == 48


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n  - bad: [\n", 5, "invalid YAML"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\nintents: []\n", 5, "unknown top-level key 'intents'"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n- intent: b\n", 5, "has no 'examples'"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    - 我叫[张三(name)\n", 5, "unbalanced brackets"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    - 我叫[张三]\n", 5, "malformed entity annotation"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    - 我叫[张三]{\"entity\": }\n", 5, "not valid JSON"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    - 我叫[张三]{\"value\": \"x\"}\n", 5, "no 'entity'"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    - 我叫张三](name)\n", 5, "unbalanced brackets"),
        ("nlu:\n- intent: a\n  synonym: b\n  examples: |\n    - ok\n", 2, "two kinds"),
        ("nlu:\n- intent: a\n  exampels: |\n    - ok\n", 3, "unknown key 'exampels'"),
        ("nlu:\n- intent: a\n  examples: |\n    - ok\n    oops\n", 5, "must start with '- '"),
        ("nlu:\n- regex: r\n  examples: |\n    - ([a-z\n", 4, "invalid regular expression"),
    ],
)
def test_errors_name_file_line_and_reason(tmp_path: Path, body: str, line: int, reason: str) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(TrainingDataError) as info:
        load_training_data(path)
    err = info.value
    assert err.source == str(path)
    assert err.line == line, str(err)
    assert reason in err.reason
    assert str(err).startswith(f"{path}:{line}: ")
