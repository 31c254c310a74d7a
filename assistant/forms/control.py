"""What a message means for the form itself: cancel, pause, resume, skip, yes/no, retry, change a field.

Trained intents (``cancel``, ``skip``, ``affirm``, ``deny``) are used when the NLU predicts them; phrase patterns
back them up, because these short messages ("不办了", "等一下", "跳过") are exactly where a classifier trained on
service questions is least sure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from assistant.forms.spec import FieldSpec, FormSpec
from assistant.forms.text import fold


class Control(StrEnum):
    CANCEL = "cancel"
    PAUSE = "pause"
    RESUME = "resume"
    SKIP = "skip"
    AFFIRM = "affirm"
    DENY = "deny"
    RETRY = "retry"


_TAIL = r"(的|了|吧|啊|呀|呢|哈|啦|哦|嗯)*"
_PATTERNS: dict[Control, re.Pattern[str]] = {
    Control.CANCEL: re.compile(
        r"不办了|不想办|不要办|不用办了|(?<![不别要用])取消|算了|放弃|退出|不弄了|cancel"
    ),
    Control.PAUSE: re.compile(
        r"等一下|等一等|等等|稍等|等会|待会|先去找|先去拿|去找一?下|回头再|晚点再|一会儿?再|暂停|先停一?下"
    ),
    Control.RESUME: re.compile(
        r"^(继续|接着|我回来了|回来了|找到了|好了继续|可以继续)|继续(办|填|吧|申请|预约)"
    ),
    Control.SKIP: re.compile(
        rf"跳过|不填|不用填|不需要填|略过|skip|^(没有|无|不需要|不用|没)(备注|了)?{_TAIL}$"
    ),
    Control.AFFIRM: re.compile(
        rf"^(确认|确定|对|是的|是|没问题|正确|提交|好|好的|可以|行|ok|okay|yes|嗯|确认提交|确认无误|没错|无误)+{_TAIL}$"
    ),
    Control.DENY: re.compile(
        rf"^(不对|不是|不正确|错了|有误|no|否|不|不行|不要)+{_TAIL}$|不取消|别取消|不要取消|不用取消"
    ),
    Control.RETRY: re.compile(r"重试|再试|重新提交|再提交|再来一次"),
}

_BY_INTENT = {
    "cancel": Control.CANCEL,
    "skip": Control.SKIP,
    "affirm": Control.AFFIRM,
    "deny": Control.DENY,
}

_MODIFY_CUE = re.compile(
    r"修改|更改|更正|改一下|改成|改为|改|写错|填错|输错|错了|不对|换一个|换个|重新填|重填"
)


def detect(
    text: str, intent: str | None = None, confidence: float = 0.0, threshold: float = 0.6
) -> set[Control]:
    key = fold(text)
    found = {c for c, p in _PATTERNS.items() if p.search(key)}
    by_intent = _BY_INTENT.get(intent or "")
    if by_intent is not None and confidence >= threshold:
        found.add(by_intent)
    return found


def modify_target(text: str, form: FormSpec) -> FieldSpec | None:
    """The field a citizen asks to change: "修改电话", "电话写错了", "把日期改一下". None without a change cue."""
    key = fold(text)
    if not _MODIFY_CUE.search(key):
        return None
    best: tuple[int, int, FieldSpec] | None = None
    for f in form.fields:
        for name in f.names:
            pos = key.find(fold(name))
            if pos >= 0 and (best is None or (pos, -len(name)) < (best[0], best[1])):
                best = (pos, -len(name), f)
    return best[2] if best else None


# intents that answer a form's question rather than leave it
_FORM_INTENTS = frozenset({"inform", "affirm", "deny", "correct_slot", "skip", "cancel", "book_appointment"})
# intents that leave the form even where free text is expected (policy questions, a human, small talk)
_LEAVING_INTENTS = frozenset(
    {"request_human", "complain", "out_of_scope", "chitchat", "greet", "goodbye", "thank"}
)
_QUESTION_INTENT_PREFIXES = ("ask_", "faq", "policy_")
_QUESTION = re.compile(
    r"[?？]|吗|什么|怎么|如何|哪|多少|几[个天号点]|是否|能不能|可不可以|要不要|为什么|啥|咋"
)


def is_digression(
    text: str,
    intent: str | None,
    confidence: float,
    ignored_intents: Sequence[str] = (),
    *,
    free_text: bool = False,
) -> bool:
    """Whether a message is for someone other than the form. Where free text is expected (a name, an
    address), only questions and intents that clearly leave count: a classifier trained on service
    questions may be confident about "王小明" for no good reason."""
    if intent in ignored_intents or _QUESTION.search(text):
        return True
    if not intent or confidence < 0.8 or intent in _FORM_INTENTS:
        return False
    return not free_text or intent in _LEAVING_INTENTS or intent.startswith(_QUESTION_INTENT_PREFIXES)
