"""Grouping unanswered questions: colloquial variants of one question together, different services apart.

The pairs are what citizens type (咋/怎么/如何, 丢了/丢失, word order, particles, traditional characters). The
first lists were used to choose the rule and the thresholds; the ``FRESH_*`` pairs were written afterwards and
only checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from knowledge.question_groups import DEFAULT_THRESHOLD, group_questions, question_key, similarity

SAME = [
    ("社保卡丢了咋办", "社保卡丢了怎么办"),
    ("社保卡丢了怎么补办", "社保卡丢失如何补办"),
    ("请问公积金怎么提取？", "公积金如何提取"),
    ("身份证过期了咋换", "身份证过期了怎么换啊"),
    ("宠物狗怎么上户口？", "寵物狗怎麼上戶口?"),
    ("居住证多久能办好", "居住证要多久才能办好"),
    ("驾照到期怎么换证", "驾照到期了如何换证"),
    ("护照在哪里办", "护照在哪儿办"),
    ("医保卡余额怎么查询", "怎么查医保卡余额"),
    ("出生证明丢了怎么办", "出生医学证明丢了咋办"),
    ("公积金提取需要什么材料", "公积金提取要啥材料"),
    ("营业执照怎么注销", "怎么注销营业执照"),
    ("新生儿怎么上户口", "新生儿上户口怎么办理"),
    ("退休金什么时候发", "退休金啥时候发放"),
]
DIFFERENT = [
    ("社保卡丢了怎么办", "身份证丢了怎么办"),
    ("公积金怎么提取", "公积金提取需要什么材料"),
    ("护照在哪里办", "港澳通行证在哪里办"),
    ("居住证多久能办好", "身份证多久能办好"),
    ("驾照到期怎么换证", "身份证到期怎么换证"),
    ("社保卡丢了怎么办", "社保卡怎么激活"),
    ("公积金贷款额度", "公积金提取额度"),
    ("营业执照怎么注销", "营业执照怎么办理"),
    ("新生儿怎么上户口", "宠物狗怎么上户口"),
    ("社保卡在哪里办", "医保卡在哪里办"),
]
FRESH_SAME = [
    ("结婚证丢了咋补", "结婚证丢失怎么补"),
    ("请问不动产证怎么查询呢", "不动产证如何查询"),
    ("港澳通行证续签在哪办", "港澳通行证续签在哪里办？"),
    ("低保怎么申请", "低保咋申请呀"),
]
FRESH_DIFFERENT = [
    ("结婚证丢了怎么补", "离婚证丢了怎么补"),
    ("低保怎么申请", "公租房怎么申请"),
    ("个税怎么退", "个税怎么交"),
    ("护照丢了怎么办", "护照过期了怎么办"),
]


@pytest.mark.parametrize(("a", "b"), SAME + FRESH_SAME)
def test_variants_of_one_question_are_alike(a: str, b: str) -> None:
    assert similarity(a, b) >= DEFAULT_THRESHOLD, (question_key(a), question_key(b))


@pytest.mark.parametrize(("a", "b"), DIFFERENT + FRESH_DIFFERENT)
def test_questions_about_different_things_are_not(a: str, b: str) -> None:
    assert similarity(a, b) < DEFAULT_THRESHOLD, (question_key(a), question_key(b))


def test_the_key_drops_punctuation_particles_and_question_adverbs() -> None:
    assert question_key("请问，社保卡丢了咋办？？") == question_key("社保卡丢了怎么办") == "社保卡丢办"
    assert question_key("请问吗？") == "请问吗"  # nothing but fillers: kept rather than emptied


@dataclass
class Row:
    id: int
    query: str
    count: int
    first_asked: datetime
    last_asked: datetime


def test_groups_count_all_wordings_and_span_their_dates() -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        Row(1, "社保卡丢了怎么办", 3, t0, t0 + timedelta(days=2)),
        Row(2, "身份证丢了怎么办", 4, t0, t0),
        Row(3, "社保卡丢了咋办", 2, t0 - timedelta(days=1), t0 + timedelta(days=5)),
        Row(4, "社保卡丢失怎么办？", 1, t0, t0),
    ]
    groups = group_questions(rows)
    assert [(g.representative.query, sorted(g.ids), g.count) for g in groups] == [
        ("社保卡丢了怎么办", [1, 3, 4], 6),
        ("身份证丢了怎么办", [2], 4),
    ]
    assert groups[0].first_asked == t0 - timedelta(days=1) and groups[0].last_asked == t0 + timedelta(days=5)
