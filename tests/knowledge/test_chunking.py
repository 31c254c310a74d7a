from __future__ import annotations

from knowledge.chunking import chunk_document, pack_sentences, split_sections, split_sentences

BODY = """# 居民身份证换领
## 办理条件
身份证有效期满前三个月内可以申请换领。证件损坏的，也可以申请换领！
## 所需材料
### 本人办理
携带原身份证和户口簿；提交近期照片。
"""


def test_sentences_split_on_chinese_and_ascii_ends_and_newlines() -> None:
    text = "第一句。第二句！第三句？第四句；Fifth? sixth!\n没有句号的一行\n“引号里。”后面"
    assert split_sentences(text) == [
        "第一句。",
        "第二句！",
        "第三句？",
        "第四句；",
        "Fifth?",
        "sixth!",
        "没有句号的一行",
        "“引号里。”",
        "后面",
    ]


def test_decimal_points_and_commas_do_not_end_sentences() -> None:
    assert split_sentences("缴费比例为8.5%，每月15日前缴纳。") == ["缴费比例为8.5%，每月15日前缴纳。"]


def test_sections_follow_heading_paths_and_skip_the_title_heading() -> None:
    sections = split_sections("居民身份证换领", BODY)
    assert [s.heading for s in sections] == ["办理条件", "所需材料 / 本人办理"]
    assert sections[1].text == "携带原身份证和户口簿；提交近期照片。"


def test_title_and_section_are_carried_into_every_chunk() -> None:
    chunks = chunk_document("居民身份证换领", BODY, max_chars=300)
    assert [c.text.split("\n")[0] for c in chunks] == [
        "居民身份证换领 / 办理条件",
        "居民身份证换领 / 所需材料 / 本人办理",
    ]
    assert [c.seq for c in chunks] == [0, 1]
    assert chunks[1].section == "所需材料 / 本人办理"


def test_packing_respects_the_limit_without_cutting_sentences_and_overlaps() -> None:
    sentences = [f"第{i}条规定的内容在这里说明清楚。" for i in range(12)]  # 15-16 characters each
    groups = pack_sentences(sentences, max_chars=50, overlap=1)
    for group in groups:
        assert sum(map(len, group)) <= 50
        assert all(s in sentences for s in group)  # whole sentences only
    # every sentence appears, in order, and consecutive chunks share one sentence
    flat = [s for g in groups for s in g]
    assert sorted(set(flat), key=sentences.index) == sentences
    for prev, nxt in zip(groups, groups[1:], strict=False):
        assert nxt[0] == prev[-1]


def test_an_overlong_sentence_is_cut_at_commas_then_hard() -> None:
    long = "，".join(["申请人需要提交身份证明材料"] * 10) + "。"
    chunks = chunk_document("标题", long, max_chars=40, overlap=0)
    assert all(len(c.body) <= 40 for c in chunks)
    assert "".join(c.body for c in chunks) == long
    no_commas = "甲" * 95
    pieces = chunk_document("标题", no_commas, max_chars=40, overlap=0)
    assert [len(c.body) for c in pieces] == [40, 40, 15]


def test_messy_input_full_width_and_mixed_scripts() -> None:
    body = "ＡＰＰ上可以办理。Visit www.gov.cn for details! 电话12345，工作日9:00-17:00。"
    chunks = chunk_document("线上办理 Online", body, max_chars=300)
    assert len(chunks) == 1
    assert chunks[0].text.startswith("线上办理 Online\n")
    assert "www.gov.cn" in chunks[0].body and "9:00-17:00" in chunks[0].body
