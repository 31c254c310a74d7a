"""Person names the citizen gives about themselves: 我叫张三, 我是李四, 姓名：王小明, 申请人：赵六.

Rules, not a model: a trigger phrase, then 2–4 Han characters that start with a known surname, cut at
punctuation and function words. ``我是`` is also "I am (a student / here to ...)", so after it a candidate must
not be a common word that happens to start with a surname character (马上, 江苏人).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from nlu.extractors._base import check_settings, make_entity
from nlu.normalize import Normalized
from nlu.types import Entity


def _words(s: str) -> tuple[str, ...]:
    return tuple(s.split())


# compound surnames first: 欧阳娜娜 is 欧阳 + 娜娜, not 欧 + 阳娜娜
COMPOUND_SURNAMES = _words(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 独孤 南宫 西门 百里 "
    "呼延 澹台 公羊 闻人 万俟 拓跋 申屠 太史 钟离 第五 左丘 东郭 司空 濮阳"
)
# the ~200 most common single surnames (simplified; names are matched on normalised text)
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
    "常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季"
    "裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄"
    "窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池"
    "查麻苑迟邝"
)
# words that start with a surname character but are not names; checked after 我是 (and anywhere as a prefix)
NOT_NAMES = _words(
    "马上 高兴 周末 黄金 程序 白天 方便 常规 安全 万一 于是 史上 金额 钱包 江苏 江西 湖南 湖北 河南 河北 "
    "广东 广西 山东 山西 云南 贵州 福建 浙江 安徽 四川 海南 吉林 辽宁 黑龙 宁夏 新疆 西藏 青海 甘肃 陕西 "
    "上海 天津 重庆 北京 香港 澳门 台湾 房东 房主 党员 农民 车主 华侨 商户 司机 师傅 全职 和平 明天 明年 "
    "时候 包括 应该 华为 康复 单位 单身 成年 成人 邵阳 路过 关于 管理 宁可 温州 常住 全家 文员 鲁莽 项目 "
    "简单 连续 宫颈 卫生 祁连 齐全 严重 谷歌 卓越 雷锋 段落 申请 尚未 庞大 戴着 白领 蓝领 童年 毕业 韦伯 "
    "单亲 房产 包工 万达 常年 孔子 高龄 高中 初中 金融 时间 应届 管委 高新 经开 南屏 北塘 云湖 青川 "
    "西山 本地 本市 外地 户籍 户口 身份 租房 购房 离职 退休"
)

_TRIGGERS = (
    r"我叫|我的名字是|我的名字叫|名字是|名字叫|名字:|姓名是|姓名:|姓名|本人姓名|申请人是|申请人:|申请人"
    r"|办理人:|办理人|联系人:|联系人|我是"
    r"|他叫|她叫|俺叫|本人|登记人写|登记人:|登记人|预约人:|预约人|办事人是|办事人|申请人写"
    r"|应该是|改成|写成|就写|名字|,叫"
)
# triggers that also introduce things other than names (我是学生, 改成租房, 应该是江苏): the stricter checks apply
_WEAK_TRIGGERS = frozenset({"我是", "本人", "应该是", "改成", "写成", "就写", "名字"})
_TRIGGER = re.compile(rf"({_TRIGGERS}) ?")
_HAN_RUN = re.compile(r"[\u4e00-\u9fff]{1,6}")
# a name ends before these: particles, verbs of intent, conjunctions
_STOP_CHARS = frozenset("的要想在来去办了是和与跟也就吗呢吧啊呀哦嘛么我你他她它这那请帮给需能会可还先再")
_STOP_WORDS = re.compile(
    # 刚 only as "just" (张三刚来): alone it is a common given-name character (罗志刚, 王刚)
    "今年|今天|明天|昨天|现在|目前|身份|电话|手机|住在|来自|准备|打算|办理|申请|咨询|问|已经"
    "|刚刚|刚才|刚来|刚到|刚从|刚办|刚毕业|刚搬|刚换|刚满"
)
_MAX_LEN = 4
_HONORIFICS = (
    "先生",
    "女士",
    "小姐",
    "老师",
    "阿姨",
    "叔叔",
    "师傅",
    "大爷",
    "大妈",
    "同志",
    "经理",
    "主任",
    "科长",
)


def _surname_len(candidate: str) -> int:
    if candidate[:2] in COMPOUND_SURNAMES:
        return 2
    return 1 if candidate[0] in SURNAMES else 0


class PersonNameExtractor:
    name = "PersonNameExtractor"
    _settings = ("extra_surnames", "not_names")

    def __init__(
        self, *, extra_surnames: list[str] | None = None, not_names: list[str] | None = None, **settings: Any
    ) -> None:
        check_settings(self.name, settings, self._settings)
        self.extra_surnames = frozenset(extra_surnames or ())
        self.not_names = tuple(NOT_NAMES) + tuple(not_names or ())

    def _surname(self, candidate: str) -> int:
        n = _surname_len(candidate)
        if n:
            return n
        return next((len(s) for s in self.extra_surnames if candidate.startswith(s)), 0)

    def extract(self, doc: Normalized, now: datetime) -> list[Entity]:
        text = doc.text
        out: list[Entity] = []
        for m in _TRIGGER.finditer(text):
            run = _HAN_RUN.match(text, m.end())
            if run is None:
                continue
            candidate = run.group()
            surname = self._surname(candidate)
            if not surname:
                continue
            # cut at the first function word after the surname; 的 in 张的 would never be a given name
            cut = next(
                (i for i, ch in enumerate(candidate) if i >= surname and ch in _STOP_CHARS), len(candidate)
            )
            word = _STOP_WORDS.search(candidate, surname)
            cut = min(cut, word.start()) if word else cut
            candidate = candidate[:cut]
            weak = m.group(1) in _WEAK_TRIGGERS
            if len(candidate) > _MAX_LEN:
                if weak:
                    continue  # 我是 + a long phrase: a description, not a name
                # 我叫张三今年三十: no boundary to cut at; take the commonest shape, surname + two characters
                candidate = candidate[: surname + 2]
            if len(candidate) < max(2, surname + 1) or self._is_word(candidate, strict=weak):
                continue
            if weak and len(candidate) == _MAX_LEN and surname == 1:
                continue  # 我是单亲妈妈: four characters after 我是 are a description unless the surname is 欧阳-like
            found = make_entity(
                doc, m.end(), m.end() + len(candidate), entity="person_name", value=None, extractor=self.name
            )
            # the value is the name as typed: converting 張 to 张 would change someone's name
            out.append(replace(found, value=found.text))
        return out

    def _is_word(self, candidate: str, *, strict: bool) -> bool:
        if any(candidate.startswith(w) for w in self.not_names):
            return True
        # 王先生, 李阿姨: a surname and a form of address, not a full name a form can use
        if candidate.endswith(_HONORIFICS):
            return True
        # after 我是, "江苏人", "外地人" style answers describe a person, they are not a name
        return strict and candidate.endswith(("人", "者", "员", "户", "生"))
