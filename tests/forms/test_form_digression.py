"""A policy question in the middle of a form: answered from the knowledge base, then the form asks again."""

from __future__ import annotations

from pathlib import Path

from form_harness import Chat, build_agent, sqlite_store

from assistant.events import ActionExecuted, ActionExecutionRejected
from assistant.forms.submission import UnconfiguredSubmitter
from knowledge.config import KnowledgeConfig
from knowledge.retrieval import SearchIndex, build_index
from knowledge.types import Citation, Passage

ANSWER = "申领居住证需携带本人身份证原件和居住证明（租赁合同或房产证）。"


def knowledge_index() -> SearchIndex:
    """The real retrieval index, lexical only (no embedding model to load in this test)."""
    guide = Citation("云州市居住证办理指南", "申请材料", 1, None, None)
    id_guide = Citation("身份证换领补领指南", "补领", 1, None, None)
    passages = [
        Passage("faq-1", "faq", "居住证办理需要什么材料", guide, answer=ANSWER, faq_id=1),
        Passage(
            "faq-2",
            "faq",
            "身份证丢了怎么补办",
            id_guide,
            answer="携带户口簿到户籍所在地派出所补领。",
            faq_id=2,
        ),
    ]
    # a lexical-only index: the default confidence model reads the embedding models' margins, which this index
    # has not got, so it uses the (fused score, margin) model that knowledge.calibration fitted before them
    config = KnowledgeConfig(
        fusion_weights={"char": 1.0},
        confidence_features=["fused", "margin"],
        calibration=[-8.3987, 8.8668, 11.5625],
        answer_threshold=0.45,
    )
    return build_index(passages, None, None, config)  # type: ignore[arg-type]


def test_policy_question_mid_form_is_answered_then_the_same_field_is_asked_again(tmp_path: Path) -> None:
    chat = Chat(
        build_agent(sqlite_store(tmp_path / "t.db"), UnconfiguredSubmitter(), knowledge=knowledge_index())
    )
    chat.say("/residence_permit")
    chat.say("王五")
    assert chat.slots()["requested_slot"] == "phone"
    replies = chat.say("办居住证要带什么材料？")
    texts = [r.text for r in replies]
    assert texts[0] == ANSWER
    assert replies[0].citations[0]["title"] == "云州市居住证办理指南"
    assert "联系电话" in texts[-1]
    tracker = chat.tracker()
    actions = [e.action_name for e in tracker.events_since_last_user() if isinstance(e, ActionExecuted)]
    assert actions[:2] == ["action_knowledge_answer", "residence_permit_application"]
    assert any(isinstance(e, ActionExecutionRejected) for e in tracker.events_since_last_user())
    assert tracker.slots["requested_slot"] == "phone" and tracker.slots["phone"] is None
    assert tracker.slots["applicant_name"] == "王五"
    # the form carries on from there
    chat.say("13912345678")
    assert chat.slots()["requested_slot"] == "residence_address"


def test_a_free_text_field_does_not_swallow_a_question(tmp_path: Path) -> None:
    chat = Chat(
        build_agent(sqlite_store(tmp_path / "t.db"), UnconfiguredSubmitter(), knowledge=knowledge_index())
    )
    chat.say("/residence_permit")
    chat.say("王五")
    chat.say("13912345678")
    assert chat.slots()["requested_slot"] == "residence_address"
    replies = chat.say("居住证办理需要什么材料？")
    assert replies[0].text == ANSWER
    assert chat.slots()["residence_address"] is None
    assert chat.slots()["requested_slot"] == "residence_address"
