"""The intent classifier's feature blocks: pinyin for romanised input, the delexicalised view, sample texts."""

from __future__ import annotations

from datetime import datetime

from nlu.components import BuildContext, Message
from nlu.intent import (
    ENTITY_MARK,
    INTENT_DEFAULTS,
    Doc,
    IntentClassifier,
    SparseFeaturizer,
    delexicalise,
    pinyin_table,
    pinyin_words,
)
from nlu.normalize import normalize
from nlu.types import Entity

NOW = datetime.fromisoformat("2026-11-27T10:00:00+08:00")


def test_pinyin_words_meet_romanised_input() -> None:
    table = pinyin_table()
    assert len(table) > 6000
    assert pinyin_words(["医保", "怎么", "续费"], table) == ["p:yibao", "p:zenme", "p:xufei"]
    assert pinyin_words(["yibao", "怎么", "续费", "?", "3"], table) == ["p:yibao", "p:zenme", "p:xufei"]
    # homophone typo: the same pinyin feature as the word meant
    assert pinyin_words(["社宝卡"], table) == pinyin_words(["社保卡"], table) == ["p:shebaoka"]
    assert "喆" not in table and pinyin_words(["王喆"], table) == ["p:wang喆"]  # outside GB 2312: stands for itself


def test_delexicalise_masks_each_span_once() -> None:
    assert delexicalise("办社保卡要什么材料", [(1, 4)]) == f"办{ENTITY_MARK}要什么材料"
    assert delexicalise("青川区社保卡在哪", [(3, 6), (0, 3)]) == f"{ENTITY_MARK}{ENTITY_MARK}在哪"
    assert delexicalise("社保卡", [(0, 3), (1, 2)]) == ENTITY_MARK  # nested span ignored
    assert delexicalise("在哪", []) == "在哪"


def test_romanised_and_han_share_pinyin_features() -> None:
    feat = SparseFeaturizer((1, 2), 0.0, 0.0, pinyin_weight=1.0)
    feat.fit([Doc("医保怎么交", ["医保", "怎么", "交"], ""), Doc("你好", ["你好"], "")])
    han, _ = feat.transform_one(Doc("医保", ["医保"], ""))
    latin, _ = feat.transform_one(Doc("yibao", ["yibao"], ""))
    assert han.tolist() == latin.tolist() and len(han) == 1


def test_parse_time_view_masks_entities_given_in_the_original_text() -> None:
    # full-width and traditional input: the entity offsets index what was typed, the mask the normalised text
    clf = IntentClassifier(dict(INTENT_DEFAULTS), BuildContext())
    clf.delex_entities = frozenset({"service"})
    typed = "辦ＸＸ社會保障卡要什麼材料"
    start = typed.index("社")
    service = Entity("service", "社保卡", start, start + 5, typed[start : start + 5], "LookupEntityExtractor")
    number = Entity("number", 3, 0, 1, "辦", "ChineseNumberExtractor")  # a type training never masked
    message = Message(normalize(typed), NOW, entities=(number, service))
    doc = clf.doc(message)
    assert doc.text == "办xx社会保障卡要什么材料"
    assert doc.delexicalised == f"办xx{ENTITY_MARK}要什么材料"
