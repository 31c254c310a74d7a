from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.db import Chunk, make_engine, make_session_factory, migrate, resolve_url
from knowledge.repository import (
    ChunkSettings,
    DocumentFields,
    FaqFields,
    KnowledgeError,
    archive_document,
    collect_passages,
    create_document,
    create_faq,
    diff_versions,
    document_versions,
    list_documents,
    list_unanswered,
    mark_handled,
    promote,
    published_passages,
    record_unanswered,
    update_document,
)

CHUNKS = ChunkSettings(max_chars=120, overlap=1)
DOC = DocumentFields(
    title="灵活就业人员参保指南",
    body="## 参保条件\n本市户籍的灵活就业人员可以参加职工养老保险。\n## 缴费标准\n缴费基数可在60%至300%之间选择。",
    department="人社局",
    service_item="灵活就业参保",
    source_url="https://gov.example.cn/flex",
    effective_date=date(2024, 1, 1),
    expiry_date=date(2030, 12, 31),
    tags=("社保", "养老"),
)


@pytest.fixture()
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    migrate(url)
    return make_session_factory(make_engine(url))


def test_migrations_create_every_table_and_are_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    migrate(url)  # a second run is a no-op
    tables = set(inspect(make_engine(url)).get_table_names())
    assert {
        "kb_documents",
        "kb_document_versions",
        "kb_chunks",
        "kb_faq_entries",
        "kb_index_versions",
        "kb_unanswered_questions",
        "kb_alembic_version",
    } <= tables


def test_migration_matches_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from knowledge.db import Base

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    with make_engine(url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "kb_alembic_version"})
        assert compare_metadata(context, Base.metadata) == []


def test_relative_sqlite_urls_resolve_against_the_project(tmp_path: Path) -> None:
    url = resolve_url("sqlite:///var/gov-assistant.db", tmp_path)
    assert url == f"sqlite:///{(tmp_path / 'var' / 'gov-assistant.db').resolve()}"
    assert (tmp_path / "var").is_dir()
    assert resolve_url("postgresql://u:p@db/kb", tmp_path) == "postgresql://u:p@db/kb"


def test_editing_creates_versions_with_author_hash_and_diff(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        doc = create_document(s, DOC, "alice", CHUNKS)
        doc_id = doc.id
    with sessions() as s, s.begin():
        body = DOC.body.replace("60%至300%", "60%至300%（含）")
        doc, changed = update_document(s, doc_id, {"body": body, "tags": ["社保"]}, "bob", CHUNKS)
        assert changed and doc.current_version == 2
        _, unchanged = update_document(s, doc_id, {"body": body}, "bob", CHUNKS)
        assert not unchanged  # same content: no new version
    with sessions() as s:
        versions = document_versions(s, doc_id)
        assert [(v.version, v.created_by) for v in versions] == [(1, "alice"), (2, "bob")]
        assert versions[0].content_hash != versions[1].content_hash
        assert versions[1].snapshot["tags"] == ["社保"]
        diff = diff_versions(s, doc_id, 1, 2)
        assert "-缴费基数可在60%至300%之间选择。" in diff and "+缴费基数可在60%至300%（含）之间选择。" in diff
        assert diff.startswith("--- v1\n+++ v2")


def test_invalid_documents_and_missing_ids_raise_bilingual_errors(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        with pytest.raises(KnowledgeError) as err:
            create_document(s, DocumentFields(title=" ", body="正文"), "alice", CHUNKS)
        assert err.value.status == 422 and err.value.message_zh and err.value.message_en
        bad_dates = DocumentFields(
            "标题", "正文。", effective_date=date(2025, 1, 1), expiry_date=date(2024, 1, 1)
        )
        with pytest.raises(KnowledgeError):
            create_document(s, bad_dates, "alice", CHUNKS)
        with pytest.raises(KnowledgeError) as missing:
            update_document(s, 999, {"title": "x"}, "alice", CHUNKS)
        assert missing.value.status == 404 and missing.value.code == "kb.document_not_found"


def test_list_filters(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        create_document(s, DOC, "alice", CHUNKS)
        create_document(
            s, DocumentFields("公积金提取", "购房可以提取公积金。", department="公积金中心"), "alice", CHUNKS
        )
    with sessions() as s:
        assert list_documents(s, q="公积金")[1] == 1
        assert [d.title for d in list_documents(s, tag="养老")[0]] == [DOC.title]
        assert list_documents(s, department="人社局")[1] == 1
        assert list_documents(s, status="draft")[1] == 2


def test_passages_carry_citations_and_follow_publish_state(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        doc_id = create_document(s, DOC, "alice", CHUNKS).id
        faq = create_faq(
            s,
            FaqFields(
                "灵活就业怎么交社保？",
                "在人社App上登记后按月缴费。",
                ("自由职业社保怎么交",),
                "社保",
                (doc_id,),
            ),
            "alice",
        )
        faq_id = faq.id
    with sessions() as s:
        assert published_passages(s) == []  # drafts are not published
        built = collect_passages(s, include_drafts=True)
    with sessions() as s, s.begin():
        promote(s, built)
    with sessions() as s:
        passages = published_passages(s)
    chunks = [p for p in passages if p.kind == "chunk"]
    faqs = [p for p in passages if p.kind == "faq"]
    assert [p.key for p in chunks] == [f"chunk:{doc_id}:1:0", f"chunk:{doc_id}:1:1"]
    assert chunks[1].text.startswith("灵活就业人员参保指南 / 缴费标准\n")
    c = chunks[1].citation
    assert (c.title, c.section, c.version, c.effective_date, c.source_url, c.document_id) == (
        DOC.title,
        "缴费标准",
        1,
        date(2024, 1, 1),
        "https://gov.example.cn/flex",
        doc_id,
    )
    assert chunks[0].expiry_date == date(2030, 12, 31) and chunks[0].tags == ("社保", "养老")
    # one passage per phrasing, same FAQ id and answer, cited to the linked document
    assert [p.key for p in faqs] == [f"faq:{faq_id}:0", f"faq:{faq_id}:1"]
    assert {p.answer for p in faqs} == {"在人社App上登记后按月缴费。"}
    assert faqs[1].text == "自由职业社保怎么交" and faqs[1].citation.title == DOC.title
    assert faqs[0].expiry_date == date(2030, 12, 31)


def test_edits_after_publish_stay_unpublished_until_the_next_publish(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        doc_id = create_document(s, DOC, "alice", CHUNKS).id
        promote(s, collect_passages(s, include_drafts=True))
    with sessions() as s, s.begin():
        update_document(s, doc_id, {"title": "灵活就业参保指南（2024版）"}, "bob", CHUNKS)
        update_document(s, doc_id, {"title": "灵活就业参保指南（2025版）"}, "bob", CHUNKS)
    with sessions() as s:
        live = published_passages(s)
        assert {p.citation.title for p in live} == {DOC.title}
        assert {p.citation.version for p in live} == {1}
        pending = collect_passages(s, include_drafts=True).passages
        assert {p.citation.version for p in pending} == {3}
        # chunks of versions nobody reads (v2: neither working nor published) are pruned
        assert {c.version for c in s.scalars(select(Chunk))} == {1, 3}
    with sessions() as s, s.begin():
        archive_document(s, doc_id)
    with sessions() as s:
        assert published_passages(s) == []


def test_expired_documents_and_their_faqs_are_left_out(sessions: sessionmaker[Session]) -> None:
    old = DocumentFields("2020年临时补贴政策", "补贴已于2021年底停止发放。", expiry_date=date(2021, 12, 31))
    with sessions() as s, s.begin():
        doc_id = create_document(s, old, "alice", CHUNKS).id
        create_faq(s, FaqFields("临时补贴还能领吗？", "可以领取。", document_ids=(doc_id,)), "alice")
        promote(s, collect_passages(s, include_drafts=True))
    with sessions() as s:
        assert published_passages(s, today=date(2026, 1, 1)) == []
        assert len(published_passages(s, today=date(2021, 6, 1))) == 2


def test_unanswered_questions_merge_by_normalised_text(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        record_unanswered(s, "護照 怎麼辦理？", ["faq:1:0"])
        record_unanswered(s, "护照  怎么办理？", ["faq:2:0"])  # simplified, extra space: same question
        record_unanswered(s, "ＡＢＣ补贴", [])
        record_unanswered(s, "   ", [])  # nothing to record
    with sessions() as s, s.begin():
        rows = list_unanswered(s)
        assert [(r.count, r.near_miss_keys) for r in rows] == [(2, ["faq:2:0"]), (1, [])]
        assert rows[0].first_asked <= rows[0].last_asked
        assert rows[1].normalized == "abc补贴"
        mark_handled(s, rows[0].id)
    with sessions() as s:
        assert [r.normalized for r in list_unanswered(s)] == ["abc补贴"]
        assert len(list_unanswered(s, include_handled=True)) == 2


# ---- the same store on PostgreSQL (CI starts one; a developer machine without it skips) -------------------



def test_the_store_and_a_publish_work_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    from kb_fixture_files import TEST_CONFIG, test_embedder, write_demo_files

    from knowledge.service import KnowledgeService

    migrate(pg_url)
    migrate(pg_url)
    engine = make_engine(pg_url)
    try:
        service = KnowledgeService(
            make_session_factory(engine), test_embedder(), TEST_CONFIG, tmp_path / "index"
        )
        report = service.import_paths(write_demo_files(tmp_path / "src"), "alice")
        assert report.totals == {"created": 4, "updated": 0, "duplicate": 0}
        assert service.import_paths(write_demo_files(tmp_path / "src"), "alice").totals["duplicate"] == 4
        service.publish("alice")
        result = service.search("社保卡在哪里办？", record=False)
        assert result.answered and result.citations
        with service.session_factory() as s, s.begin():
            passages = published_passages(s)
            assert {p.tags for p in passages if p.kind == "chunk"} == {("身份证", "户政")}  # JSON round trip
            assert list_documents(s, tag="户政")[1] == 1
            record_unanswered(s, "護照怎麼辦", ["faq:1:0"])
            record_unanswered(s, "护照怎么办", [])
        with service.session_factory() as s:
            assert [(r.normalized, r.count) for r in list_unanswered(s)] == [("护照怎么办", 2)]
    finally:
        engine.dispose()


def test_unanswered_questions_never_store_id_or_phone_numbers(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        record_unanswered(s, "我的身份證號11010519491231002X，手機１３９１２３４５６７８，補貼到賬了嗎", [])
        record_unanswered(s, "我的身份证号110105194912310021，手机13800138000，补贴到账了吗", [])
        record_unanswered(s, "打了12345还是没人处理", [])
    with sessions() as s:
        rows = list_unanswered(s)
    stored = " ".join(f"{r.query} {r.normalized}" for r in rows)
    for secret in (
        "11010519491231002X",
        "110105194912310021",
        "13912345678",
        "１３９１２３４５６７８",
        "13800138000",
    ):
        assert secret not in stored
    # two citizens, one question: grouped under placeholders; the editor sees a masked original
    assert [(r.normalized, r.count) for r in rows] == [
        ("我的身份证号<身份证号>,手机<电话>,补贴到账了吗", 2),
        ("打了12345还是没人处理", 1),  # a public hotline is not personal data
    ]
    assert rows[0].query.startswith("我的身份證號1101**********002X，手機139****5678")
