"""How a scripted citizen answers the demo's social-security-card loss report: the load benchmark's citizens and the
fault tests' use the same answers, matched by a cue in the bot's question."""

from __future__ import annotations

# what the bot's question mentions -> the citizen's answer, first match wins
LOSS_REPORT_ANSWERS: tuple[tuple[str, str], ...] = (
    ("核对", "确认"),
    ("姓名", "张三"),  # before 身份证: "姓名（与身份证一致）"
    ("身份证", "110101199003077571"),
    ("手机", "13912345678"),
    ("电话", "13912345678"),
    ("丢失", "跳过"),
    ("区县", "青川区"),
)


def loss_report_answer(question: str) -> str | None:
    """The answer to the bot's ``question``, or None for a question the script does not expect."""
    return next((answer for cue, answer in LOSS_REPORT_ANSWERS if cue in question), None)
