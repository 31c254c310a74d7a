from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest
from kb_fixture_files import TEST_CONFIG, make_service, write_demo_files
from sqlalchemy import select

from knowledge.db import Document, FaqEntry, IndexVersion
from knowledge.publishing import read_live_pointer
from knowledge.repository import ChunkSettings, KnowledgeError, list_unanswered, update_document, update_faq
from knowledge.service import KnowledgeService

QUESTION = "社保卡在哪里办？"
OLD_ANSWER = "携带本人身份证到社保经办机构或合作银行网点申请。"


@pytest.fixture()
def service(tmp_path: Path) -> KnowledgeService:
    svc = make_service(tmp_path)
    svc.import_paths(write_demo_files(tmp_path / "src"), "alice")
    return svc


def _faq_id(service: KnowledgeService, question: str) -> int:
    with service.session_factory() as s:
        return s.scalars(select(FaqEntry.id).where(FaqEntry.question == question)).one()


def _set_answer(service: KnowledgeService, answer: str) -> None:
    with service.session_factory() as s, s.begin():
        update_faq(s, _faq_id(service, "如何办理社保卡？"), {"answer": answer})


def test_nothing_is_answered_before_the_first_publish(service: KnowledgeService) -> None:
    result = service.search(QUESTION, record=False)
    assert not result.answered and result.hits == ()


def test_publish_makes_drafts_live_with_citations(service: KnowledgeService, tmp_path: Path) -> None:
    info = service.publish("alice")
    assert (info.status, info.created_by, info.passage_count) == ("live", "alice", 9)
    assert read_live_pointer(tmp_path / "index") == info.id
    assert (tmp_path / "index" / str(info.id) / "meta.json").exists()
    with service.session_factory() as s:
        assert {d.status for d in s.scalars(select(Document))} == {"published"}
        assert {f.status for f in s.scalars(select(FaqEntry))} == {"published"}
    result = service.search(QUESTION)
    assert result.answered and result.answer == OLD_ANSWER
    doc_answer = service.search("换领身份证要带什么材料？", record=False)
    assert doc_answer.answered and doc_answer.citations
    cite = doc_answer.citations[0]
    assert cite.title == "居民身份证换领办理指南" and cite.version == 1
    assert cite.source_url == "https://gov.example.cn/id-card" and cite.effective_date == date(2024, 1, 1)
    assert cite.section


def test_publish_then_rollback(service: KnowledgeService, tmp_path: Path) -> None:
    first = service.publish("alice")
    _set_answer(service, "现在可以在人社App上在线申领社保卡。")
    second = service.publish("bob")
    assert service.search(QUESTION, record=False).answer == "现在可以在人社App上在线申领社保卡。"
    statuses = {v.id: v.status for v in service.versions()}
    assert statuses == {first.id: "previous", second.id: "live"}
    back = service.rollback(first.id)
    assert back.status == "live" and service.live_version == first.id
    assert read_live_pointer(tmp_path / "index") == first.id
    assert service.search(QUESTION, record=False).answer == OLD_ANSWER
    assert {v.id: v.status for v in service.versions()} == {first.id: "live", second.id: "previous"}
    with pytest.raises(KnowledgeError) as err:
        service.rollback(999)
    assert err.value.status == 404


def test_a_failed_build_leaves_live_untouched(service: KnowledgeService, tmp_path: Path) -> None:
    good = service.publish("alice")
    _set_answer(service, "新的答案不应上线。")
    # a real build failure: the config names a retriever that does not exist
    broken = make_service(tmp_path, TEST_CONFIG.model_copy(update={"fusion_weights": {"nosuch": 1.0}}))
    with pytest.raises(KnowledgeError) as err:
        broken.publish("bob")
    assert err.value.code == "kb.publish_failed" and "unchanged" in err.value.message_en
    assert read_live_pointer(tmp_path / "index") == good.id
    with service.session_factory() as s:
        failed = s.scalars(select(IndexVersion).where(IndexVersion.status == "failed")).one()
        assert "nosuch" in (failed.error or "")
        faq = s.get(FaqEntry, _faq_id(service, "如何办理社保卡？"))
        assert faq is not None and faq.status == "published"
    assert not (tmp_path / "index" / str(failed.id)).exists()
    assert service.search(QUESTION, record=False).answer == OLD_ANSWER
    with pytest.raises(KnowledgeError):
        service.rollback(failed.id)  # a failed version can never be made live


def test_expired_documents_are_not_answered_from(service: KnowledgeService) -> None:
    with service.session_factory() as s, s.begin():
        update_document(s, 1, {"expiry_date": date(2030, 6, 30)}, "alice", ChunkSettings())
    service.publish("alice")
    query = "换领身份证要带什么材料？"
    before = service.search(query, record=False, today=date(2030, 6, 30))
    assert before.hits and any(h.passage.document_id == 1 for h in before.hits)
    after = service.search(query, record=False, today=date(2030, 7, 1))
    # neither the document's chunks nor the FAQ linked to it are returned once it has expired
    assert all(h.passage.document_id != 1 for h in after.hits)
    assert all(h.passage.expiry_date is None for h in after.hits)


def test_low_confidence_queries_are_recorded_for_editors(tmp_path: Path) -> None:
    strict = make_service(tmp_path, TEST_CONFIG.model_copy(update={"answer_threshold": 1.0}))
    strict.import_paths(write_demo_files(tmp_path / "src"), "alice")
    strict.publish("alice")
    for q in ["养狗要办证吗？", "養狗要辦證嗎?", "养狗 要办证吗？"]:
        result = strict.search(q)
        assert not result.answered and result.hits  # near-misses for "did you mean"
    strict.search("养狗要办证吗？", record=False)  # hit testing does not count
    with strict.session_factory() as s:
        rows = list_unanswered(s)
    assert [(r.normalized, r.count) for r in rows] == [("养狗要办证吗?", 2), ("养狗 要办证吗?", 1)]
    assert rows[0].near_miss_keys and all(":" in k for k in rows[0].near_miss_keys)


def test_other_processes_pick_up_a_publish(service: KnowledgeService, tmp_path: Path) -> None:
    service.publish("alice")
    # same database and index folder, its own memory; checks LIVE only when asked to
    replica = make_service(tmp_path, TEST_CONFIG.model_copy(update={"reload_check_seconds": 0}))
    assert replica.search(QUESTION, record=False).answer == OLD_ANSWER  # loads LIVE lazily
    _set_answer(service, "第二版答案。")
    second = service.publish("bob")
    assert replica.search(QUESTION, record=False).answer == OLD_ANSWER  # still the version it holds
    assert replica.reload_if_changed() is True
    assert replica.live_version == second.id
    assert replica.search(QUESTION, record=False).answer == "第二版答案。"
    assert replica.reload_if_changed() is False


def test_searches_during_publish_always_see_a_complete_index(service: KnowledgeService) -> None:
    service.publish("alice")
    new_answer = "第二版：线上线下均可申领社保卡。"
    _set_answer(service, new_answer)
    seen: list[tuple[bool, str | None, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_loop() -> None:
        try:
            while not stop.is_set():
                result = service.search(QUESTION, record=False)
                seen.append((result.answered, result.answer, len(result.hits)))
        except BaseException as err:  # surfaced in the main thread below
            errors.append(err)

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        service.publish("bob")
        # keep searching a little after the swap so both versions are observed
        while sum(1 for s in seen if s[1] == new_answer) < 3 and thread.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors
    assert seen and {answer for _, answer, _ in seen} <= {OLD_ANSWER, new_answer}
    assert all(answered and hits == seen[0][2] for answered, _, hits in seen)
    answers = [a for _, a, _ in seen]
    assert answers[0] == OLD_ANSWER and answers[-1] == new_answer
    # once the new index is live, no search falls back to the old one
    assert OLD_ANSWER not in answers[answers.index(new_answer) :]


def test_seed_imports_and_publishes_only_into_an_empty_knowledge_base(tmp_path: Path) -> None:
    from knowledge.service import seed_if_empty

    fresh = make_service(tmp_path / "fresh")
    content = write_demo_files(tmp_path / "content")
    assert seed_if_empty(fresh, [tmp_path / "missing"]) is None
    first = seed_if_empty(fresh, content)
    assert first is not None and first.status == "live" and first.created_by == "seed"
    assert fresh.search(QUESTION, record=False).answer == OLD_ANSWER
    assert seed_if_empty(fresh, content) is None  # the database is the truth from then on
    assert len(fresh.versions()) == 1


def test_searches_follow_another_process_publish_by_themselves(
    service: KnowledgeService, tmp_path: Path
) -> None:
    service.publish("alice")
    replica = make_service(tmp_path, TEST_CONFIG.model_copy(update={"reload_check_seconds": 0.05}))
    assert replica.search(QUESTION, record=False).answer == OLD_ANSWER
    _set_answer(service, "第二版答案。")
    second = service.publish("bob")
    time.sleep(0.1)
    assert replica.search(QUESTION, record=False).answer == "第二版答案。"
    assert replica.live_version == second.id


def test_old_versions_beyond_the_kept_number_are_retired(tmp_path: Path) -> None:
    svc = make_service(tmp_path, TEST_CONFIG.model_copy(update={"keep_index_versions": 1}))
    svc.import_paths(write_demo_files(tmp_path / "src"), "alice")
    ids = [svc.publish("alice").id for _ in range(3)]
    assert {v.id: v.status for v in svc.versions()} == {ids[0]: "retired", ids[1]: "previous", ids[2]: "live"}
    assert not (tmp_path / "index" / str(ids[0])).exists()
    assert (tmp_path / "index" / str(ids[1])).is_dir()
    with pytest.raises(KnowledgeError) as err:
        svc.rollback(ids[0])
    assert err.value.code == "kb.version_not_servable" and err.value.status == 409
    assert svc.rollback(ids[1]).status == "live"
