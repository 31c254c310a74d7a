"""How ``action_knowledge_answer`` words a reply it cannot give with confidence: a clarifying question when a
near miss is likely right, an honest "don't know" when nothing is. The search results are given directly (the
retrieval behind them is tested in tests/knowledge); what is under test is the choice of words and buttons."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import pytest

from assistant.actions import ActionContext
from assistant.actions.knowledge import ABSTAIN_TEXT, CLARIFY_TEXT, NEAR_MISS_TEXT, ActionKnowledgeAnswer
from assistant.agent import SHANGHAI
from assistant.domain import Domain
from assistant.events import BotUttered, UserUttered
from assistant.nlg import NLG
from assistant.tracker import Tracker
from knowledge.types import Citation, Hit, Passage, SearchResult

ID_GUIDE = Citation("居民身份证换领办事指南", "办理时间", 3, date(2025, 1, 1), "https://example.gov.cn/id")


def faq(key: str, question: str) -> Passage:
    return Passage(key, "faq", question, ID_GUIDE, answer="……")


class Results:
    """The knowledge seam (``KnowledgeSearch``) answering every query with one prepared result."""

    def __init__(self, result: SearchResult) -> None:
        self.result = result
        self.queries: list[str] = []

    def search(self, query: str, k: int = 5) -> SearchResult:
        self.queries.append(query)
        return self.result


def reply(result: SearchResult, domain: Domain | None = None) -> BotUttered:
    domain = domain or Domain.from_dict({"intents": ["ask_policy"]})
    tracker = Tracker("c1", (UserUttered("身份证过期了怎么换", {"intent": {"name": "ask_policy", "confidence": 0.9}}),))
    ctx = ActionContext(tracker, domain, NLG(domain, seed=1), Results(result), datetime.now(SHANGHAI))
    (event,) = asyncio.run(ActionKnowledgeAnswer().run(ctx))
    assert isinstance(event, BotUttered)
    return event


def not_answered(*scored: tuple[str, float]) -> SearchResult:
    hits = tuple(Hit(faq(f"faq:{i}", q), s) for i, (q, s) in enumerate(scored))
    return SearchResult("身份证过期了怎么换", answered=False, answer=None, hits=hits)


def test_close_entries_on_the_question_ask_which_one_is_meant() -> None:
    event = reply(not_answered(("过期身份证还能办事吗", 0.17), ("身份证下个月过期现在能换吗", 0.50)))
    assert event.text == CLARIFY_TEXT and "不知道" not in event.text
    assert [b["title"] for b in event.data["buttons"]] == ["过期身份证还能办事吗", "身份证下个月过期现在能换吗"]
    # still an abstention for the figures and the editors' unanswered list
    assert event.metadata["abstained"] is True and event.metadata["clarify"] is True


@pytest.mark.parametrize("top", [0.0, 0.12, 0.29])
def test_weak_near_misses_get_an_honest_dont_know_with_the_suggestions(top: float) -> None:
    event = reply(not_answered(("社保卡丢了怎么办", top), ("公积金怎么提取", 0.05)))
    assert event.text == f"{ABSTAIN_TEXT}\n{NEAR_MISS_TEXT}"
    assert len(event.data["buttons"]) == 2 and "clarify" not in event.metadata


def test_nothing_near_is_a_plain_dont_know_without_buttons() -> None:
    event = reply(not_answered())
    assert event.text == ABSTAIN_TEXT and "buttons" not in event.data


def test_a_domain_may_word_the_clarifying_question_itself() -> None:
    domain = Domain.from_dict(
        {"intents": ["ask_policy"], "responses": {"utter_knowledge_clarify": [{"text": "您想问的是下面哪一个？"}]}}
    )
    event = reply(not_answered(("过期身份证还能办事吗", 0.6)), domain)
    assert event.text == "您想问的是下面哪一个？" and event.data["buttons"]
