from __future__ import annotations

from pathlib import Path

import pytest
from kb_fixture_files import MARKDOWN, make_docx, make_pdf_bytes, make_service, make_xlsx, write_demo_files
from sqlalchemy import func, select

from knowledge.db import Document, FaqEntry
from knowledge.importers import ImportFormatError, parse_file
from knowledge.repository import published_passages
from knowledge.service import ImportFailed, KnowledgeService


@pytest.fixture()
def service(tmp_path: Path) -> KnowledgeService:
    return make_service(tmp_path)


def _count(service: KnowledgeService, model: type) -> int:
    with service.session_factory() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_markdown_front_matter_and_headings(tmp_path: Path) -> None:
    doc = parse_file("id-card.md", MARKDOWN.encode()).documents[0]
    assert doc.title == "居民身份证换领办理指南"
    assert (doc.department, doc.service_item, doc.source_url) == (
        "公安局户政科",
        "身份证换领",
        "https://gov.example.cn/id-card",
    )
    assert str(doc.effective_date) == "2024-01-01" and str(doc.expiry_date) == "2099-12-31"
    assert doc.tags == ("身份证", "户政")
    assert "## 办理条件" in doc.body and not doc.body.startswith("---")


def test_markdown_without_front_matter_takes_the_first_heading_or_the_file_name() -> None:
    assert parse_file("a.md", "# 护照办理\n正文。".encode()).documents[0].title == "护照办理"
    assert parse_file("港澳通行证.md", "只有正文。".encode()).documents[0].title == "港澳通行证"
    gbk = "# 户口迁移\n迁入需要准迁证。".encode("gb18030")
    assert parse_file("b.md", gbk).documents[0].title == "户口迁移"


def test_markdown_front_matter_errors_name_the_file_and_reason() -> None:
    with pytest.raises(ImportFormatError) as err:
        parse_file("bad.md", "---\ntitle: x\nexpiry_date: 明年\n---\n正文".encode())
    assert err.value.file == "bad.md" and err.value.location == "front matter"
    assert "expiry_date" in err.value.reason_en and "日期" in err.value.reason_zh
    with pytest.raises(ImportFormatError, match="unknown keys: colour"):
        parse_file("bad.md", "---\ncolour: red\n---\n正文".encode())


def test_docx_headings_become_sections(tmp_path: Path) -> None:
    doc = parse_file("card.docx", make_docx(tmp_path / "card.docx").read_bytes()).documents[0]
    assert doc.title == "社会保障卡申领说明"  # from the core properties
    assert doc.body.splitlines()[0] == "# 申领条件"
    assert "## 线上申领" in doc.body and "登录人社App" in doc.body


def test_pdf_pages_become_text() -> None:
    data = make_pdf_bytes(["Housing fund withdrawal.", "Bring your ID card (original)."])
    doc = parse_file("fund.pdf", data).documents[0]
    assert doc.title == "Housing Fund Withdrawal"
    assert "Housing fund withdrawal." in doc.body and "Bring your ID card (original)." in doc.body
    with pytest.raises(ImportFormatError, match="cannot read PDF"):
        parse_file("broken.pdf", b"%PDF-1.4 not really")


def test_xlsx_faq_sheet_with_chinese_headers(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "faq.xlsx",
        [
            ["分类", "问题", "相似问题", "答案"],
            [
                "社保",
                "如何办理社保卡？",
                "社保卡怎么办\n怎么申请社保卡|社保卡办理流程；社保卡哪里办",
                "带身份证去网点。",
            ],
            [None, None, None, None],  # blank rows are skipped
            ["公积金", "公积金怎么提取？", None, "在App上申请。"],
        ],
    )
    faqs = parse_file("faq.xlsx", path.read_bytes()).faqs
    assert [f.question for f in faqs] == ["如何办理社保卡？", "公积金怎么提取？"]
    assert faqs[0].similar_questions == ("社保卡怎么办", "怎么申请社保卡", "社保卡办理流程", "社保卡哪里办")
    assert (faqs[0].category, faqs[0].location, faqs[1].location) == ("社保", "row 2", "row 4")


def test_csv_faq_sheet_with_english_headers_and_errors() -> None:
    csv_text = "Question,Similar Questions,Answer,Category\n护照怎么办？,护照在哪办|办护照,带身份证去出入境窗口。,出入境\n"
    faqs = parse_file("faq.csv", csv_text.encode()).faqs
    assert faqs[0].similar_questions == ("护照在哪办", "办护照") and faqs[0].category == "出入境"
    with pytest.raises(ImportFormatError) as err:
        parse_file("faq.csv", "问题,答案\n护照怎么办？,\n".encode())
    assert (err.value.file, err.value.location) == ("faq.csv", "row 2")
    assert err.value.reason_zh == "答案为空" and err.value.reason_en == "the answer is empty"
    with pytest.raises(ImportFormatError, match="header row"):
        parse_file("faq.csv", b"foo,bar\n1,2\n")


def test_jsonl_faq_in_the_shared_eval_format() -> None:
    lines = [
        '{"id": 7, "category": "社保", "question": "如何办理社保卡？", "answer": "带身份证。"}',
        "",
        '{"id": 8, "question": "", "answer": "只有答案的条目。", "similar_questions": ["别的问法"], "doc": "x.md"}',
    ]
    faqs = parse_file("faq.jsonl", "\n".join(lines).encode()).faqs
    assert [(f.external_id, f.location) for f in faqs] == [("7", "line 1"), ("8", "line 3")]
    assert faqs[1].document_refs == ("x.md",) and faqs[1].similar_questions == ("别的问法",)
    with pytest.raises(ImportFormatError) as err:
        parse_file("faq.jsonl", b'{"question": "a", "answer": "b"}\n{broken\n')
    assert err.value.location == "line 2" and "JSON" in err.value.reason_en


def test_unsupported_suffix() -> None:
    with pytest.raises(ImportFormatError, match="unsupported file type .exe"):
        parse_file("virus.exe", b"MZ")


def test_import_reports_per_file_and_detects_duplicates(service: KnowledgeService, tmp_path: Path) -> None:
    files = write_demo_files(tmp_path / "src")
    seen: list[str] = []
    report = service.import_paths([tmp_path / "src"], "alice", progress=seen.append)
    assert report.ok and len(seen) == 2
    assert {Path(f.name).name: (f.status, f.created) for f in report.files} == {
        "id-card.md": ("created", 1),
        "faq.jsonl": ("created", 3),
    }
    again = service.import_paths(files, "alice")
    assert [f.status for f in again.files] == ["duplicate", "duplicate"]
    assert again.totals == {"created": 0, "updated": 0, "duplicate": 4}
    assert (_count(service, Document), _count(service, FaqEntry)) == (1, 3)
    with service.session_factory() as s:
        assert {d.status for d in s.scalars(select(Document))} == {"draft"}  # imports are drafts


def test_reimporting_an_edited_file_makes_a_new_version(service: KnowledgeService, tmp_path: Path) -> None:
    path = tmp_path / "id-card.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    service.import_paths([path], "alice")
    path.write_text(MARKDOWN.replace("二十个工作日", "十五个工作日"), encoding="utf-8")
    report = service.import_paths([path], "bob")
    assert report.files[0].status == "updated"
    with service.session_factory() as s:
        doc = s.scalars(select(Document)).one()
        assert doc.current_version == 2 and "十五个工作日" in doc.body
        assert [v.created_by for v in doc.versions] == ["alice", "bob"]


def test_faq_full_width_and_traditional_retyping_is_a_duplicate(service: KnowledgeService) -> None:
    a = '{"question": "如何办理社保卡？", "answer": "带身份证到网点办理。"}'
    b = '{"question": "如何辦理社保卡?", "answer": "帶身份證到網點辦理。"}'
    report = service.import_files([("a.jsonl", a.encode()), ("b.jsonl", b.encode())], "alice")
    assert [f.status for f in report.files] == ["created", "duplicate"]


def test_a_failing_import_writes_nothing_and_names_file_row_and_reason(
    service: KnowledgeService, tmp_path: Path
) -> None:
    good = [(p.name, p.read_bytes()) for p in write_demo_files(tmp_path / "src")]
    bad_sheet = make_xlsx(
        tmp_path / "bad.xlsx", [["问题", "答案"], ["护照怎么办？", "去窗口。"], ["签证呢？", None]]
    )
    with pytest.raises(ImportFailed) as err:
        service.import_files([*good, ("bad.xlsx", bad_sheet.read_bytes())], "alice")
    failed = err.value
    assert failed.code == "kb.import_failed" and failed.status == 422
    assert "bad.xlsx (row 3)" in failed.message_en and "答案为空" in failed.message_zh
    assert [f.status for f in failed.report.files] == ["skipped", "skipped", "failed"]
    assert (_count(service, Document), _count(service, FaqEntry)) == (0, 0)


def test_a_failing_import_leaves_the_published_index_intact(
    service: KnowledgeService, tmp_path: Path
) -> None:
    service.import_paths(write_demo_files(tmp_path / "src"), "alice")
    version = service.publish("alice")
    before = service.search("社保卡在哪里办", record=False)
    with service.session_factory() as s:
        published_before = published_passages(s)
    broken_md = "---\ntitle: [unclosed\n---\n正文".encode()
    edited = MARKDOWN.replace("二十个工作日", "十个工作日").encode()
    with pytest.raises(ImportFailed, match="broken.md"):
        service.import_files([("id-card.md", edited), ("broken.md", broken_md)], "mallory")
    with service.session_factory() as s:
        assert published_passages(s) == published_before
        assert s.scalars(select(Document)).one().current_version == 1
    assert service.live_version == version.id
    assert service.search("社保卡在哪里办", record=False) == before
    assert service.versions()[0].id == version.id
