from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nlu.extractors import PersonNameExtractor
from nlu.normalize import normalize

NOW = datetime(2026, 11, 27, 16, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def names(text: str, **settings: object) -> list[str]:
    return [e.value for e in PersonNameExtractor(**settings).extract(normalize(text), NOW)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("我叫张三", "张三"),
        ("我是李四", "李四"),
        ("姓名王小明", "王小明"),
        ("姓名：王小明", "王小明"),
        ("名字是欧阳娜娜", "欧阳娜娜"),
        ("申请人：赵六", "赵六"),
        ("我叫 刘德华", "刘德华"),
        ("我叫张三，想办社保", "张三"),
        ("我叫张三想办社保", "张三"),
        ("我是王小明的妈妈", "王小明"),
        ("我叫张三今年三十岁", "张三"),
        ("hi 我叫陈一 ok", "陈一"),
        ("联系人:司马光", "司马光"),
        ("我是欧阳娜娜", "欧阳娜娜"),
        ("我叫王大小明", "王大小明"),
        ("申请人：罗志刚", "罗志刚"),
        ("申請人：羅志剛", "羅志剛"),
        ("我叫王刚", "王刚"),
        ("我叫张三刚来云州", "张三"),
        ("我是李四刚刚提交了申请", "李四"),
        ("他叫郑浩", "郑浩"),
        ("帮我妈办，她叫曹秀兰", "曹秀兰"),
        ("本人欧阳明轩", "欧阳明轩"),
        ("登记人写韩冬", "韩冬"),
        ("预约人于海", "于海"),
        ("办事人是郭芳", "郭芳"),
        ("名字改成梁爽，刚才打错字了", "梁爽"),
        ("姓名写错了，应该是刘洋", "刘洋"),
        ("名字何勇，号码18687654321", "何勇"),
        ("我姓周，叫周建华", "周建华"),
    ],
)
def test_names(text: str, name: str) -> None:
    assert names(text) == [name]


@pytest.mark.parametrize(
    "text",
    [
        "我是来办社保的",
        "我是马上要办",
        "我是江苏人",
        "我是外地人想问下",
        "我是学生",
        "我是房东",
        "我是党员",
        "我是王",
        "我是第一次办",
        "我是想问一下公积金怎么提取",
        "我叫什么来着",
        "我是王先生",
        "我是单亲妈妈",
        "我是房产中介",
        "我是高龄老人",
        "联系人李阿姨",
        "提取原因改成租房",
        "地点改成高新区",
        "本人户口在外地",
        "应该是江苏的",
        "叫你们领导来",
        "名字错了",
        "名字少打了一个字",
        "好的，叫号了吗",
    ],
)
def test_no_false_positives(text: str) -> None:
    assert names(text) == []


def test_name_keeps_traditional_spelling_and_offsets() -> None:
    text = "您好，我叫張三豐。"
    [e] = PersonNameExtractor().extract(normalize(text), NOW)
    assert e.value == "張三豐" and text[e.start : e.end] == "張三豐"
    assert e.entity == "person_name"


def test_settings_extend_surnames_and_stop_words() -> None:
    assert names("我叫蒯大富") == []
    assert names("我叫蒯大富", extra_surnames=["蒯"]) == ["蒯大富"]
    # a word the built-in stop list misses can be added from config.yml
    assert names("我是高级") == ["高级"]
    assert names("我是高级", not_names=["高级"]) == []


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ValueError, match="surnames"):
        PersonNameExtractor(surnames=["蒯"])
