"""Writing parsed files into the store as drafts, with duplicate detection by content hash.

The caller owns the transaction: ``KnowledgeService.import_files`` runs every file of one import in a single
transaction, so a failure anywhere writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from knowledge.db import Document, FaqEntry
from knowledge.importers.types import ParsedDocument, ParsedFaq, ParsedFile
from knowledge.repository import (
    ChunkSettings,
    DocumentFields,
    FaqFields,
    create_document,
    create_faq,
    update_document,
    update_faq,
)

FileStatus = Literal["created", "updated", "duplicate", "failed", "skipped"]


@dataclass(frozen=True)
class FileReport:
    name: str
    status: FileStatus
    created: int = 0
    updated: int = 0
    duplicate: int = 0
    location: str | None = None  # where it failed: "row 3", "line 7", "front matter"
    error_zh: str | None = None
    error_en: str | None = None


def _apply_document(session: Session, doc: ParsedDocument, by: str, chunks: ChunkSettings) -> str:
    fields = DocumentFields.of(doc)
    digest = fields.content_hash()
    live = select(Document).where(Document.status != "archived")
    if session.scalars(live.where(Document.content_hash == digest)).first() is not None:
        return "duplicate"
    same_file = session.scalars(
        live.where(Document.source_key == doc.source_key).order_by(Document.id)
    ).first()
    if same_file is not None:
        update_document(session, same_file.id, _changes(fields), by, chunks)
        return "updated"
    create_document(session, fields, by, chunks, source_key=doc.source_key)
    return "created"


def _changes(fields: DocumentFields) -> dict[str, object]:
    return {k: getattr(fields, k) for k in DocumentFields.__dataclass_fields__}


def _apply_faq(session: Session, faq: ParsedFaq, by: str) -> str:
    fields = FaqFields(
        question=faq.question,
        answer=faq.answer,
        similar_questions=faq.similar_questions,
        category=faq.category,
        document_refs=faq.document_refs,
    )
    digest = fields.content_hash()
    live = select(FaqEntry).where(FaqEntry.status != "archived")
    if faq.external_id is not None:
        existing = session.scalars(live.where(FaqEntry.external_id == faq.external_id)).first()
        if existing is not None:
            if existing.content_hash == digest:
                return "duplicate"
            update_faq(session, existing.id, {k: getattr(fields, k) for k in FaqFields.__dataclass_fields__})
            return "updated"
    if session.scalars(live.where(FaqEntry.content_hash == digest)).first() is not None:
        return "duplicate"
    create_faq(session, fields, by, external_id=faq.external_id)
    return "created"


def apply_file(session: Session, parsed: ParsedFile, by: str, chunks: ChunkSettings) -> FileReport:
    counts = {"created": 0, "updated": 0, "duplicate": 0}
    for doc in parsed.documents:
        counts[_apply_document(session, doc, by, chunks)] += 1
    for faq in parsed.faqs:
        counts[_apply_faq(session, faq, by)] += 1
    status: FileStatus = "created" if counts["created"] else "updated" if counts["updated"] else "duplicate"
    return FileReport(parsed.name, status, **counts)
