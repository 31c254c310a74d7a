"""The trained pipeline: registry, token alignment, round trip through disk, fallback, CRF vs rules."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from nlu.builtins import JiebaTokenizer, default_registry
from nlu.components import BuildContext, Encoder, Message, PipelineError, TrainExample, identity_normalized
from nlu.config import ComponentConfig
from nlu.crf import CRFEntityExtractor, widens
from nlu.intent import FALLBACK_INTENT, FallbackClassifier
from nlu.persistence import latest_model, load_interpreter, load_latest, read_metadata, save, train
from nlu.pipeline import Interpreter, train_interpreter, use_encoder
from nlu.tokenizer import Token, make_segmenter, segment, split_at
from nlu.training_data import load_training_data, parse_training_data
from nlu.types import Entity, IntentScore

FIXTURE = Path(__file__).parent.parent / "fixtures" / "nlu" / "project"
NOW = datetime.fromisoformat("2026-11-27T10:00:00+08:00")

PIPELINE = [
    ComponentConfig(name="ChineseNormalizer"),
    ComponentConfig(name="JiebaTokenizer"),
    ComponentConfig(name="CRFEntityExtractor"),
    ComponentConfig(name="IntentClassifier"),
    ComponentConfig.model_validate({"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.0}),
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return use_encoder()


@pytest.fixture(scope="module")
def interpreter(encoder: Encoder) -> Interpreter:
    return train_interpreter(load_training_data(FIXTURE / "data"), PIPELINE, encoder_factory=lambda: encoder)


def test_parses_intents_in_messy_chinese(interpreter: Interpreter) -> None:
    cases = {
        "您好！": "greet",
        "我想查下社會保險交了几年": "query_social_security",  # traditional characters
        "ｚｈｕａｎ人工，我要找人工客服": "request_human",  # full width Latin
        "公積金咋提取啊": "housing_fund",
        "身份証丢了怎么补办": "id_card",  # typo 証
    }
    for text, intent in cases.items():
        result = interpreter.parse(text, NOW)
        assert result.intent.name == intent, (text, result.intent_ranking[:3])
        assert result.intent_ranking[0].name == intent
        assert abs(sum(s.confidence for s in result.intent_ranking) - 1.0) < 0.05


def test_empty_input_is_no_intent(interpreter: Interpreter) -> None:
    for text in ("", "   ", "\u3000"):
        result = interpreter.parse(text, NOW)
        assert result.intent == IntentScore(FALLBACK_INTENT, 0.0) and result.intent_ranking == ()


def test_crf_finds_annotated_entities_with_original_offsets(interpreter: Interpreter) -> None:
    text = "我在海澱區想提取公積金"
    result = interpreter.parse(text, NOW)
    found = {(e.entity, e.text) for e in result.entities}
    assert ("district", "海澱區") in found
    ent = next(e for e in result.entities if e.entity == "district")
    assert text[ent.start : ent.end] == "海澱區" and ent.value == "海淀区"
    assert ent.extractor == "CRFEntityExtractor"


def test_split_at_entity_boundaries() -> None:
    tokens = [Token("我在", 0, 2), Token("朝阳区办", 2, 6)]
    assert [t.text for t in split_at(tokens, [2, 4])] == ["我在", "朝阳", "区办"]
    assert [(t.start, t.end) for t in split_at(tokens, [3])] == [(0, 2), (2, 3), (3, 6)]


def test_misaligned_annotation_is_split_not_rejected() -> None:
    # "阳区" is an annotation jieba cannot produce from this text by itself: "朝阳区" is one dictionary word
    data = parse_training_data("nlu:\n- intent: a\n  examples: |\n    - 去朝[阳区](x)办事\n- intent: b\n  examples: |\n    - 你好\n")
    seg = make_segmenter()
    assert "阳区" not in [t.text for t in segment(seg, "去朝阳区办事")]
    tok = JiebaTokenizer({}, BuildContext())
    tok.segmenter = seg  # the plain dictionary, without the training words, so the split must do the work
    example = data.examples[0]
    prepared = tok.prepare(TrainExample(example, identity_normalized(example.text), (), example.entities))
    assert "阳区" in [t.text for t in prepared.tokens]
    interp = train_interpreter(data, PIPELINE[:3])  # trains the CRF on it without error
    assert interp.names == ["ChineseNormalizer", "JiebaTokenizer", "CRFEntityExtractor"]


def test_training_words_enter_the_model_dictionary() -> None:
    data = parse_training_data("nlu:\n- intent: a\n  examples: |\n    - 办[灵活就业参保](service)\n- intent: b\n  examples: |\n    - 好\n")
    interp = train_interpreter(data, PIPELINE[:2])
    assert "灵活就业参保" in interp.parse("我想办灵活就业参保").tokens


def test_round_trip_same_predictions(interpreter: Interpreter, encoder: Encoder, tmp_path: Path) -> None:
    path = save(interpreter, tmp_path / "models")
    loaded = load_interpreter(path, encoder_factory=lambda: encoder)
    for text in ["你好", "我在海淀区想取公积金", "今天天气怎么样", "转人工！！", "社保 查询 SB12345678"]:
        assert loaded.parse(text, NOW) == interpreter.parse(text, NOW)
    assert latest_model(tmp_path) == path


def test_train_from_project_writes_versioned_artefact(encoder: Encoder, tmp_path: Path) -> None:
    from assistant.config import load_config

    project = tmp_path / "proj"
    shutil.copytree(FIXTURE, project)
    path = train(project, load_config(project), encoder_factory=lambda: encoder)
    meta = read_metadata(path)
    assert path.parent == project / "models" and path.name.startswith("nlu-")
    assert meta["intents"] == sorted(meta["intents"]) and "greet" in meta["intents"]
    assert len(meta["config_hash"]) == 64 and len(meta["training_data_hash"]) == 64
    assert any("CountVectorsFeaturizer" in w for w in meta["warnings"])
    shutil.rmtree(project / "data")  # loading needs no training data
    assert load_latest(project, encoder_factory=lambda: encoder).parse("你好", NOW).intent.name == "greet"


def test_fallback_keeps_ranking() -> None:
    ranking = (IntentScore("a", 0.35), IntentScore("b", 0.33), IntentScore("c", 0.32))
    msg = Message(identity_normalized("x"), NOW, intent=ranking[0], ranking=ranking)
    low = FallbackClassifier({"threshold": 0.4, "ambiguity_threshold": 0.0}).process(msg)
    assert low.intent == IntentScore(FALLBACK_INTENT, 0.4) and low.ranking == ranking
    close = FallbackClassifier({"threshold": 0.3, "ambiguity_threshold": 0.1}).process(msg)
    assert close.intent.name == FALLBACK_INTENT
    sure = FallbackClassifier({"threshold": 0.3, "ambiguity_threshold": 0.01}).process(msg)
    assert sure.intent == ranking[0]


def test_out_of_scope_falls_back(interpreter: Interpreter) -> None:
    spec, _ = interpreter.components[-1]
    strict = FallbackClassifier({"threshold": 0.95, "ambiguity_threshold": 0.0})
    high = Interpreter([*interpreter.components[:-1], (spec, strict)], interpreter.context)
    result = high.parse("量子力学的波函数坍缩", NOW)
    assert result.intent.name == FALLBACK_INTENT
    assert result.intent_ranking and result.intent_ranking[0].name != FALLBACK_INTENT


def test_crf_never_duplicates_a_rule_entity(interpreter: Interpreter) -> None:
    crf = next(c for s, c in interpreter.components if s.name == "CRFEntityExtractor")
    assert isinstance(crf, CRFEntityExtractor)
    message = interpreter.process("我在海淀区想取公积金", NOW)
    assert any(e.entity == "district" for e in message.entities)
    rule = Entity("place", "海淀区", 2, 5, "海淀区", "LookupEntityExtractor")
    stripped = message.evolve(entities=(rule,))
    again = crf.process(stripped)
    assert [e for e in again.entities if e.start < 5 and e.end > 2] == [rule]


def test_unknown_component_is_named() -> None:
    with pytest.raises(PipelineError, match="NoSuchThing"):
        default_registry().resolve([("NoSuchThing", {})])


def test_rasa_names_map_or_are_reported() -> None:
    resolved, warnings = default_registry().resolve(
        [("JiebaTokenizer", {}), ("DIETClassifier", {}), ("ResponseSelector", {}), ("LexicalSyntacticFeaturizer", {})]
    )
    assert [s.name for s, _ in resolved] == ["JiebaTokenizer", "IntentClassifier", "CRFEntityExtractor"]
    assert any(w.startswith("ResponseSelector") for w in warnings)
    assert any(w.startswith("DIETClassifier") for w in warnings)


def test_requires_checked() -> None:
    with pytest.raises(PipelineError, match="IntentClassifier"):
        default_registry().resolve([("IntentClassifier", {})])


FULL_DATA = """version: "3.1"
nlu:
- intent: leave_phone
  examples: |
    - 我的电话是[13800138000](phone)
    - 打[13912345678](phone)找我
    - 联系方式[18611112222](phone)
    - 手机号[15000000001](phone)，回电
- intent: ask_district
  examples: |
    - 我住在[海淀区](district)
    - [朝阳区](district)怎么走
    - 去[东城区](district)办
    - 订单SB12345678怎么查
- synonym: 社会保险
  examples: |
    - 社保
- regex: order_number
  examples: |
    - SB\\d{8}
- lookup: service
  examples: |
    - 社保
    - 公积金
"""


def test_full_pipeline_rules_and_crf_do_not_duplicate(encoder: Encoder) -> None:
    pipeline = [
        ComponentConfig(name="ChineseNormalizer"),
        ComponentConfig(name="JiebaTokenizer"),
        ComponentConfig(name="PhoneExtractor"),
        ComponentConfig(name="RegexEntityExtractor"),
        ComponentConfig(name="LookupEntityExtractor"),
        ComponentConfig(name="CRFEntityExtractor"),
        ComponentConfig(name="EntitySynonymMapper"),
        ComponentConfig(name="IntentClassifier"),
    ]
    interp = train_interpreter(parse_training_data(FULL_DATA), pipeline, encoder_factory=lambda: encoder)
    result = interp.parse("电话 138-0013-8000，住海淀区，社保订单SB87654321", NOW)
    phones = [e for e in result.entities if e.entity == "phone"]
    assert len(phones) == 1 and phones[0].extractor == "PhoneExtractor"  # the CRF's guess was dropped
    by_type = {e.entity: e for e in result.entities}
    assert by_type["order_number"].text == "SB87654321"  # regex from nlu.yml
    assert by_type["service"].value == "社会保险"  # lookup from nlu.yml, then synonym
    spans = sorted((e.start, e.end) for e in result.entities)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_parse_from_several_threads_matches_sequential(interpreter: Interpreter) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = ["我在海淀区想取公积金", "你好", "我要在朝阳区换身份证", "转人工"] * 5
    expected = [interpreter.parse(t, NOW) for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: interpreter.parse(t, NOW), texts))
    # BLAS splits a matrix product differently when several threads call it at
    # once, so confidences may differ in the 8th digit and near-tied tail
    # scores may swap places; anything beyond that would be a shared-state race.
    for g, e in zip(got, expected, strict=True):
        assert g.intent.name == e.intent.name
        assert g.intent.confidence == pytest.approx(e.intent.confidence, abs=1e-6)
        assert {s.name: s.confidence for s in g.intent_ranking} == pytest.approx(
            {s.name: s.confidence for s in e.intent_ranking}, abs=1e-6
        )
        assert (g.entities, g.tokens, g.normalized_text) == (e.entities, e.tokens, e.normalized_text)


def test_settings_are_checked_by_name() -> None:
    with pytest.raises(PipelineError, match=r"IntentClassifier: unknown setting\(s\) epochs"):
        default_registry().resolve([("JiebaTokenizer", {}), ("IntentClassifier", {"epochs": 100})])
    resolved, warnings = default_registry().resolve(
        [("JiebaTokenizer", {"intent_tokenization_flag": True}), ("IntentClassifier", {}),
         ("FallbackClassifier", {"threshold": 0.7})]
    )
    assert any("intent_tokenization_flag" in w for w in warnings)
    assert resolved[2][1] == {"threshold": 0.7, "ambiguity_threshold": 0.1}


_NAMES_NLU = """
version: "3.1"
nlu:
- intent: inform
  examples: |
    - 申请人：[罗志刚](person_name)
    - 申请人：[王建国](person_name)
    - 申请人：[李秀英](person_name)
    - 申请人：[陈晓东](person_name)
    - 申请人：[张伟](person_name)
    - 申请人：[刘志强](person_name)
    - 申请人：[赵小刚](person_name)
    - 申请人：[黄明](person_name)
- intent: greet
  examples: |
    - 你好
    - 您好
"""


def test_crf_widens_a_name_the_rule_cut_short() -> None:
    interp = train_interpreter(parse_training_data(_NAMES_NLU), PIPELINE[:3])
    crf = next(c for s, c in interp.components if s.name == "CRFEntityExtractor")
    message = interp.process("申请人：罗志刚", NOW)
    assert [(e.entity, e.value) for e in message.entities] == [("person_name", "罗志刚")]
    cut = Entity("person_name", "罗志", 4, 6, "罗志", "PersonNameExtractor")
    again = crf.process(message.evolve(entities=(cut,)))
    assert [(e.value, e.start, e.end, e.extractor) for e in again.entities] == [(
        "罗志刚", 4, 7, "CRFEntityExtractor")]


def test_crf_never_widens_a_validated_rule_entity() -> None:
    phone = Entity("phone", "13812345678", 0, 11, "13812345678", "PhoneExtractor")
    assert not widens(phone, "phone", 0, 13)
    name = Entity("person_name", "罗志", 4, 6, "罗志", "PersonNameExtractor")
    assert widens(name, "person_name", 4, 7)
    assert not widens(name, "person_name", 4, 6)  # same span: the rule keeps it
    assert not widens(name, "district", 4, 7)  # another type never replaces it
