"""Documents, versions, FAQ entries, index versions and unanswered questions: reads and writes in a session.

Functions take an open session and leave committing to the caller, so an import or a publish can group many
writes into one transaction. Errors callers can show carry a stable code and a message in both languages.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from knowledge.chunking import chunk_document
from knowledge.db import (
    Chunk,
    Document,
    DocumentVersion,
    FaqEntry,
    IndexVersion,
    UnansweredQuestion,
    utcnow,
)
from knowledge.importers.types import ParsedDocument
from knowledge.question_groups import DEFAULT_THRESHOLD, QuestionGroup, group_questions, surface_key
from knowledge.types import Citation, Passage
from nlu.normalize import normalize, normalize_text


class KnowledgeError(Exception):
    """An error shown to editors or API clients: stable code, HTTP-like status, Chinese and English text."""

    def __init__(self, code: str, message_zh: str, message_en: str, status: int = 400) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en}


def not_found(kind_zh: str, kind_en: str, ident: object) -> KnowledgeError:
    return KnowledgeError(
        f"kb.{kind_en}_not_found", f"{kind_zh} {ident} 不存在", f"{kind_en} {ident} not found", 404
    )


@dataclass(frozen=True)
class ChunkSettings:
    max_chars: int = 300
    overlap: int = 1


@dataclass(frozen=True)
class DocumentFields:
    title: str
    body: str
    department: str | None = None
    service_item: str | None = None
    source_url: str | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    tags: tuple[str, ...] = ()

    def snapshot(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        for key in ("effective_date", "expiry_date"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> DocumentFields:
        values = dict(data)
        for key in ("effective_date", "expiry_date"):
            values[key] = date.fromisoformat(values[key]) if values.get(key) else None
        values["tags"] = tuple(values.get("tags") or ())
        return cls(**{k: values.get(k) for k in cls.__dataclass_fields__})

    @classmethod
    def of(cls, doc: Document | ParsedDocument) -> DocumentFields:
        """The editable fields of a stored document or of one just parsed from an imported file."""
        return cls(
            title=doc.title,
            body=doc.body,
            department=doc.department,
            service_item=doc.service_item,
            source_url=doc.source_url,
            effective_date=doc.effective_date,
            expiry_date=doc.expiry_date,
            tags=tuple(doc.tags or ()),
        )

    def content_hash(self) -> str:
        return _hash(self.snapshot())


def _hash(data: object) -> str:
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def _validate_document(fields: DocumentFields) -> None:
    if not fields.title.strip() or not fields.body.strip():
        raise KnowledgeError(
            "kb.invalid_document", "文档标题和正文不能为空", "a document needs a title and a body", 422
        )
    if fields.effective_date and fields.expiry_date and fields.expiry_date < fields.effective_date:
        raise KnowledgeError(
            "kb.invalid_document", "失效日期早于生效日期", "the expiry date is before the effective date", 422
        )


# ---- documents -------------------------------------------------------------------------------------------


def _write_chunks(
    session: Session, doc_id: int, version: int, fields: DocumentFields, cs: ChunkSettings
) -> None:
    for draft in chunk_document(fields.title, fields.body, cs.max_chars, cs.overlap):
        session.add(
            Chunk(document_id=doc_id, version=version, seq=draft.seq, section=draft.section, text=draft.text)
        )


def _prune_chunks(session: Session, doc: Document) -> None:
    # only the working version and the published one are ever read
    keep = {doc.current_version, doc.published_version} - {None}
    session.execute(delete(Chunk).where(Chunk.document_id == doc.id, Chunk.version.not_in(keep)))


def create_document(
    session: Session, fields: DocumentFields, by: str, chunks: ChunkSettings, source_key: str | None = None
) -> Document:
    _validate_document(fields)
    now = utcnow()
    digest = fields.content_hash()
    doc = Document(
        **{k: getattr(fields, k) for k in DocumentFields.__dataclass_fields__ if k != "tags"},
        tags=list(fields.tags),
        status="draft",
        source_key=source_key,
        content_hash=digest,
        current_version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(doc)
    session.flush()
    session.add(
        DocumentVersion(
            document_id=doc.id,
            version=1,
            created_by=by,
            created_at=now,
            content_hash=digest,
            snapshot=fields.snapshot(),
        )
    )
    _write_chunks(session, doc.id, 1, fields, chunks)
    session.flush()
    return doc


def get_document(session: Session, doc_id: int) -> Document:
    doc = session.get(Document, doc_id)
    if doc is None:
        raise not_found("文档", "document", doc_id)
    return doc


def update_document(
    session: Session, doc_id: int, changes: dict[str, Any], by: str, chunks: ChunkSettings
) -> tuple[Document, bool]:
    """Apply field changes as a new version; returns (document, whether a version was created). Editing an
    archived document brings it back as a draft."""
    doc = get_document(session, doc_id)
    unknown = set(changes) - set(DocumentFields.__dataclass_fields__)
    if unknown:
        raise KnowledgeError(
            "kb.invalid_document", f"未知字段：{sorted(unknown)}", f"unknown fields: {sorted(unknown)}", 422
        )
    current = DocumentFields.of(doc)
    if "tags" in changes:
        changes = {**changes, "tags": tuple(changes["tags"] or ())}
    fields = replace(current, **changes)
    _validate_document(fields)
    digest = fields.content_hash()
    if digest == doc.content_hash and doc.status != "archived":
        return doc, False
    now = utcnow()
    version = doc.current_version + 1
    for key in DocumentFields.__dataclass_fields__:
        value = getattr(fields, key)
        setattr(doc, key, list(value) if key == "tags" else value)
    doc.content_hash = digest
    doc.current_version = version
    doc.updated_at = now
    if doc.status == "archived":
        doc.status = "draft"
    session.add(
        DocumentVersion(
            document_id=doc.id,
            version=version,
            created_by=by,
            created_at=now,
            content_hash=digest,
            snapshot=fields.snapshot(),
        )
    )
    _write_chunks(session, doc.id, version, fields, chunks)
    session.flush()
    _prune_chunks(session, doc)
    return doc, True


def archive_document(session: Session, doc_id: int) -> Document:
    """Archived documents leave the index at the next publish; their versions are kept."""
    doc = get_document(session, doc_id)
    doc.status = "archived"
    doc.updated_at = utcnow()
    session.flush()
    return doc


@dataclass(frozen=True)
class Facets:
    """Values the editor's filters offer, and how much is waiting to be published."""

    departments: list[str]
    service_items: list[str]
    categories: list[str]
    pending_documents: int
    pending_faq: int


def facets(session: Session) -> Facets:
    def distinct(column: Any) -> list[str]:
        return [v for v in session.scalars(select(column).distinct().order_by(column)) if v]

    pending_docs = session.scalar(
        select(func.count())
        .select_from(Document)
        .where(
            Document.status != "archived",
            or_(Document.published_version.is_(None), Document.published_version != Document.current_version),
        )
    )
    pending_faq = session.scalar(select(func.count()).select_from(FaqEntry).where(FaqEntry.status == "draft"))
    return Facets(
        distinct(Document.department),
        distinct(Document.service_item),
        distinct(FaqEntry.category),
        pending_docs or 0,
        pending_faq or 0,
    )


def list_documents(
    session: Session,
    *,
    q: str | None = None,
    status: str | None = None,
    department: str | None = None,
    service_item: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Document], int]:
    stmt: Select[Any] = select(Document)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Document.title.like(like), Document.body.like(like)))
    if status:
        stmt = stmt.where(Document.status == status)
    if department:
        stmt = stmt.where(Document.department == department)
    if service_item:
        stmt = stmt.where(Document.service_item == service_item)
    stmt = stmt.order_by(Document.id)
    if tag:
        # tags are a JSON list; filtering in Python keeps this portable between SQLite and PostgreSQL
        docs = [d for d in session.scalars(stmt) if tag in (d.tags or [])]
        return docs[offset : offset + limit], len(docs)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return list(session.scalars(stmt.limit(limit).offset(offset))), total


def document_versions(session: Session, doc_id: int) -> list[DocumentVersion]:
    get_document(session, doc_id)
    stmt = (
        select(DocumentVersion).where(DocumentVersion.document_id == doc_id).order_by(DocumentVersion.version)
    )
    return list(session.scalars(stmt))


def _version(session: Session, doc_id: int, version: int) -> DocumentVersion:
    row = session.scalars(
        select(DocumentVersion).where(
            DocumentVersion.document_id == doc_id, DocumentVersion.version == version
        )
    ).first()
    if row is None:
        raise not_found("文档版本", "document_version", f"{doc_id}@{version}")
    return row


# how a version's fields read in a diff: editors see which field changed in their own words
_FIELD_LABELS = {
    "department": "部门",
    "service_item": "服务事项",
    "source_url": "来源链接",
    "effective_date": "生效日期",
    "expiry_date": "失效日期",
    "tags": "标签",
}


def _render_snapshot(snapshot: dict[str, Any]) -> list[str]:
    def shown(value: Any) -> str:
        if isinstance(value, list):
            return "、".join(map(str, value)) or "（无）"
        return "（无）" if value in (None, "") else str(value)

    extra = sorted(k for k in snapshot if k not in _FIELD_LABELS and k not in ("title", "body"))
    meta = [f"{_FIELD_LABELS.get(k, k)}：{shown(snapshot.get(k))}" for k in [*_FIELD_LABELS, *extra]]
    return [f"标题：{snapshot.get('title')}", *meta, "", *str(snapshot.get("body", "")).splitlines()]


@dataclass(frozen=True)
class DiffLine:
    """One line of a version diff: ``op`` is "hunk" (a ``@@`` header), "add", "del" or "ctx" (unchanged);
    ``old``/``new`` are the line's numbers in each version (None where it does not exist)."""

    op: str
    text: str
    old: int | None = None
    new: int | None = None


def diff_lines(session: Session, doc_id: int, old: int, new: int, context: int = 3) -> list[DiffLine]:
    """The line diff between two versions of a document (title, fields, then the body), as hunks with
    ``context`` unchanged lines around each change; empty when the versions are the same."""
    a = _render_snapshot(_version(session, doc_id, old).snapshot)
    b = _render_snapshot(_version(session, doc_id, new).snapshot)
    out: list[DiffLine] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        out.append(
            DiffLine("hunk", f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@")
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(DiffLine("ctx", a[i], i + 1, j1 + (i - i1) + 1) for i in range(i1, i2))
                continue
            out.extend(DiffLine("del", a[i], i + 1, None) for i in range(i1, i2))
            out.extend(DiffLine("add", b[j], None, j + 1) for j in range(j1, j2))
    return out


def diff_versions(session: Session, doc_id: int, old: int, new: int) -> str:
    a, b = _version(session, doc_id, old), _version(session, doc_id, new)
    lines = difflib.unified_diff(
        _render_snapshot(a.snapshot),
        _render_snapshot(b.snapshot),
        fromfile=f"v{old}",
        tofile=f"v{new}",
        lineterm="",
    )
    return "\n".join(lines)


# ---- FAQ ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaqFields:
    question: str
    answer: str
    similar_questions: tuple[str, ...] = ()
    category: str | None = None
    document_ids: tuple[int, ...] = ()
    document_refs: tuple[str, ...] = ()

    def content_hash(self) -> str:
        # normalised so that a full-width or traditional re-typing of the same pair is still a duplicate
        return _hash(
            {
                "q": normalize_text(self.question),
                "s": sorted(normalize_text(s) for s in self.similar_questions),
                "a": normalize_text(self.answer),
                "c": self.category,
            }
        )

    @classmethod
    def of(cls, faq: FaqEntry) -> FaqFields:
        return cls(
            question=faq.question,
            answer=faq.answer,
            similar_questions=tuple(faq.similar_questions or ()),
            category=faq.category,
            document_ids=tuple(faq.document_ids or ()),
            document_refs=tuple(faq.document_refs or ()),
        )


def _apply_faq(faq: FaqEntry, fields: FaqFields) -> None:
    # an entry without a question is allowed (answer-only): the answer itself is then what is matched
    if not fields.answer.strip():
        raise KnowledgeError("kb.invalid_faq", "问答条目的答案不能为空", "a FAQ entry needs an answer", 422)
    faq.question = fields.question.strip()
    faq.answer = fields.answer.strip()
    faq.similar_questions = [s.strip() for s in fields.similar_questions if s.strip()]
    faq.category = fields.category
    faq.document_ids = list(fields.document_ids)
    faq.document_refs = list(fields.document_refs)
    faq.content_hash = fields.content_hash()
    faq.updated_at = utcnow()


def create_faq(session: Session, fields: FaqFields, by: str, external_id: str | None = None) -> FaqEntry:
    faq = FaqEntry(status="draft", external_id=external_id, created_by=by, created_at=utcnow())
    _apply_faq(faq, fields)
    session.add(faq)
    session.flush()
    return faq


def get_faq(session: Session, faq_id: int) -> FaqEntry:
    faq = session.get(FaqEntry, faq_id)
    if faq is None:
        raise not_found("问答条目", "faq", faq_id)
    return faq


def update_faq(session: Session, faq_id: int, changes: dict[str, Any]) -> FaqEntry:
    faq = get_faq(session, faq_id)
    current = FaqFields.of(faq)
    for key in ("similar_questions", "document_ids", "document_refs"):
        if key in changes:
            changes = {**changes, key: tuple(changes[key] or ())}
    _apply_faq(faq, replace(current, **changes))
    if faq.status == "archived":
        faq.status = "draft"
    session.flush()
    return faq


def archive_faq(session: Session, faq_id: int) -> FaqEntry:
    faq = get_faq(session, faq_id)
    faq.status = "archived"
    faq.updated_at = utcnow()
    session.flush()
    return faq


def list_faqs(
    session: Session,
    *,
    q: str | None = None,
    category: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[FaqEntry], int]:
    stmt: Select[Any] = select(FaqEntry)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(FaqEntry.question.like(like), FaqEntry.answer.like(like)))
    if category:
        stmt = stmt.where(FaqEntry.category == category)
    if status:
        stmt = stmt.where(FaqEntry.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return list(session.scalars(stmt.order_by(FaqEntry.id).limit(limit).offset(offset))), total


# ---- passages for the index --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PassageSet:
    """What an index build is made of, and which document versions and FAQ entries that makes live."""

    passages: tuple[Passage, ...]
    document_versions: tuple[tuple[int, int], ...] = ()
    faq_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class _DocView:
    id: int
    version: int
    fields: DocumentFields
    source_key: str | None
    chunks: list[Any] = field(default_factory=list)  # rows or Chunk objects: seq, section, text


def _expired(expiry: date | None, today: date | None) -> bool:
    return expiry is not None and today is not None and expiry < today


def collect_passages(session: Session, *, include_drafts: bool, today: date | None = None) -> PassageSet:
    """Chunks of live documents and every phrasing of live FAQ entries. With ``include_drafts`` the working
    versions of drafts and edited documents are taken (what a publish makes live); without, only what was
    published. Documents expired on ``today`` are left out (the index filters again at search time)."""
    # one query for the documents and one for their chunks, whatever the number of documents
    wanted = Document.current_version if include_drafts else Document.published_version
    views: dict[int, _DocView] = {}
    if include_drafts:
        # the working copy is the current version: its metadata is on the row, no snapshot to parse
        meta = [getattr(Document, k) for k in DocumentFields.__dataclass_fields__ if k != "body"]
        rows = session.execute(
            select(Document.id, Document.source_key, Document.current_version, *meta)
            .where(Document.status != "archived")
            .order_by(Document.id)
        )
        for doc_id, source_key, version, title, *rest in rows:
            values = dict(zip([c.key for c in meta[1:]], rest, strict=True))
            values["tags"] = tuple(values["tags"] or ())
            views[doc_id] = _DocView(
                doc_id, version, DocumentFields(title=title, body="", **values), source_key
            )
    else:
        rows = session.execute(
            select(Document.id, Document.source_key, DocumentVersion.version, DocumentVersion.snapshot)
            .join(
                DocumentVersion,
                (DocumentVersion.document_id == Document.id) & (DocumentVersion.version == wanted),
            )
            .where(Document.status == "published")
            .order_by(Document.id)
        )
        for doc_id, source_key, version, snapshot in rows:
            views[doc_id] = _DocView(doc_id, version, DocumentFields.from_snapshot(snapshot), source_key)
    chunk_stmt = (
        select(Chunk.document_id, Chunk.version, Chunk.seq, Chunk.section, Chunk.text)
        .join(Document, (Chunk.document_id == Document.id) & (Chunk.version == wanted))
        .where(Document.status != "archived")
        .order_by(Chunk.document_id, Chunk.seq)
    )
    for chunk in session.execute(chunk_stmt):
        view = views.get(chunk.document_id)
        if view is not None and chunk.version == view.version:
            view.chunks.append(chunk)
    passages: list[Passage] = []
    for view in views.values():
        f = view.fields
        if _expired(f.expiry_date, today):
            continue
        if not view.chunks:
            # chunks are written with every version; rebuild if an older database lacks them
            body = _version(session, view.id, view.version).snapshot.get("body", "")
            drafts = chunk_document(f.title, body)
            view.chunks.extend(Chunk(seq=d.seq, section=d.section, text=d.text) for d in drafts)
        for chunk in view.chunks:
            passages.append(
                Passage(
                    key=f"chunk:{view.id}:{view.version}:{chunk.seq}",
                    kind="chunk",
                    text=chunk.text,
                    citation=Citation(
                        f.title, chunk.section, view.version, f.effective_date, f.source_url, view.id
                    ),
                    document_id=view.id,
                    expiry_date=f.expiry_date,
                    tags=f.tags,
                )
            )
    by_key = {v.source_key: v for v in views.values() if v.source_key}
    statuses = ("published", "draft") if include_drafts else ("published",)
    faq_ids: list[int] = []
    for faq in session.scalars(select(FaqEntry).where(FaqEntry.status.in_(statuses)).order_by(FaqEntry.id)):
        linked = [views[i] for i in faq.document_ids or [] if i in views]
        linked += [by_key[r] for r in faq.document_refs or [] if r in by_key and by_key[r] not in linked]
        expiries = [v.fields.expiry_date for v in linked if v.fields.expiry_date]
        expiry = min(expiries) if expiries else None
        if _expired(expiry, today):
            continue
        faq_ids.append(faq.id)
        if linked:
            d = linked[0]
            citation = Citation(
                d.fields.title,
                faq.question or None,
                d.version,
                d.fields.effective_date,
                d.fields.source_url,
                d.id,
            )
        else:
            title = f"常见问题 · {faq.category}" if faq.category else "常见问题"
            citation = Citation(title, faq.question or None, None, None, None, None)
        phrasings = [faq.question, *(faq.similar_questions or [])]
        phrasings = [p for p in phrasings if p.strip()] or [faq.answer]
        for n, text in enumerate(phrasings):
            passages.append(
                Passage(
                    key=f"faq:{faq.id}:{n}",
                    kind="faq",
                    text=text,
                    citation=citation,
                    answer=faq.answer,
                    faq_id=faq.id,
                    document_id=linked[0].id if linked else None,
                    expiry_date=expiry,
                    tags=(faq.category,) if faq.category else (),
                )
            )
    return PassageSet(tuple(passages), tuple((v.id, v.version) for v in views.values()), tuple(faq_ids))


def published_passages(session: Session, today: date | None = None) -> list[Passage]:
    """The seam with the index builder: what is published now."""
    return list(collect_passages(session, include_drafts=False, today=today).passages)


def promote(session: Session, built: PassageSet) -> None:
    """Mark the document versions and FAQ entries an index was built from as published."""
    docs = {d.id: d for d in session.scalars(select(Document).where(Document.status != "archived"))}
    changed: list[Document] = []
    for doc_id, version in built.document_versions:
        doc = docs.get(doc_id)
        if doc is None or (doc.status == "published" and doc.published_version == version):
            continue  # unchanged since the last publish: nothing to write
        doc.published_version = version
        doc.status = "published"
        changed.append(doc)
    session.flush()
    for doc in changed:
        _prune_chunks(session, doc)
    ids = list(built.faq_ids)
    for start in range(0, len(ids), 500):
        session.execute(
            update(FaqEntry)
            .where(FaqEntry.id.in_(ids[start : start + 500]), FaqEntry.status == "draft")
            .values(status="published")
        )
    session.flush()


# ---- index versions --------------------------------------------------------------------------------------


def list_index_versions(session: Session) -> list[IndexVersion]:
    return list(session.scalars(select(IndexVersion).order_by(IndexVersion.id.desc())))


def get_index_version(session: Session, version_id: int) -> IndexVersion:
    row = session.get(IndexVersion, version_id)
    if row is None:
        raise not_found("索引版本", "index_version", version_id)
    return row


def make_live(session: Session, version_id: int) -> IndexVersion:
    # FOR UPDATE: two replicas publishing at once on PostgreSQL serialise here, so only one version is live
    live = select(IndexVersion).where(IndexVersion.status == "live").with_for_update()
    for row in session.scalars(live):
        if row.id != version_id:
            row.status = "previous"
    row = get_index_version(session, version_id)
    row.status = "live"
    session.flush()
    return row


# ---- unanswered questions ----------------------------------------------------------------------------------


def mask_personal_data(text: str) -> tuple[str, str]:
    """``text`` with ID and phone numbers masked (``1101**********1234``, ``139****5678``), and its normalised
    form with those numbers replaced by placeholders, so the same question asked by two citizens is grouped."""
    from nlu.extractors.idcard import find_id_spans, mask_id
    from nlu.extractors.phone import find_phone_spans, mask_phone

    norm = normalize(text)
    spans: list[tuple[int, int, str, str]] = [(a, b, "<身份证号>", "id") for a, b in find_id_spans(norm.text)]
    for a, b in find_phone_spans(norm.text):
        if not any(a < e and s < b for s, e, _, _ in spans):
            spans.append((a, b, "<电话>", "phone"))
    masked, grouped = text, norm.text
    for a, b, placeholder, kind in sorted(spans, reverse=True):
        oa, ob = norm.span_to_original(a, b)
        value = mask_id(norm.text[a:b]) if kind == "id" else mask_phone(norm.text[a:b])
        if value == norm.text[a:b]:
            continue  # a public hotline such as 12345 stays as it is
        masked = masked[:oa] + value + masked[ob:]
        grouped = grouped[:a] + placeholder + grouped[b:]
    return masked, grouped


def record_unanswered(
    session: Session, query: str, near_miss_keys: Sequence[str], now: datetime | None = None
) -> UnansweredQuestion | None:
    """Count a low-confidence query; identical normalised text (width, traditional, case, spaces) is merged.
    ID and phone numbers are masked before anything is stored: editors need the question, not the person."""
    query, normalized = mask_personal_data(query)
    normalized = normalized[:1000]
    if not normalized:
        return None
    now = now or utcnow()
    for _attempt in range(2):
        row = session.scalars(
            select(UnansweredQuestion).where(UnansweredQuestion.normalized == normalized)
        ).first()
        if row is not None:
            row.count += 1
            row.last_asked = now
            row.near_miss_keys = list(near_miss_keys)
            session.flush()
            return row
        try:
            with session.begin_nested():
                row = UnansweredQuestion(
                    query=query,
                    normalized=normalized,
                    count=1,
                    first_asked=now,
                    last_asked=now,
                    handled=False,
                    near_miss_keys=list(near_miss_keys),
                )
                session.add(row)
            return row
        except IntegrityError:
            continue  # another process inserted the same text meanwhile: count it there
    return None


def list_unanswered(
    session: Session, *, include_handled: bool = False, limit: int = 100
) -> list[UnansweredQuestion]:
    stmt = select(UnansweredQuestion)
    if not include_handled:
        stmt = stmt.where(UnansweredQuestion.handled.is_(False))
    stmt = stmt.order_by(UnansweredQuestion.count.desc(), UnansweredQuestion.last_asked.desc()).limit(limit)
    return list(session.scalars(stmt))


def unanswered_groups(
    session: Session, *, include_handled: bool = False, limit: int = 500, threshold: float | None = None
) -> list[QuestionGroup]:
    """The ``limit`` most asked unanswered questions, grouped by similarity (``knowledge.question_groups``)."""
    rows = list_unanswered(session, include_handled=include_handled, limit=limit)
    return group_questions(rows, DEFAULT_THRESHOLD if threshold is None else threshold)


def _unanswered_rows(session: Session, ids: Sequence[int]) -> list[UnansweredQuestion]:
    wanted = list(dict.fromkeys(ids))
    rows = {r.id: r for r in session.scalars(select(UnansweredQuestion).where(UnansweredQuestion.id.in_(wanted)))}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise not_found("未解答问题", "unanswered_question", ", ".join(map(str, missing)))
    return [rows[i] for i in wanted]


def mark_handled_many(session: Session, ids: Sequence[int], handled: bool = True) -> list[UnansweredQuestion]:
    """Mark several questions (a group) at once; unknown ids fail the whole call."""
    rows = _unanswered_rows(session, ids)
    for row in rows:
        row.handled = handled
    session.flush()
    return rows


def faq_from_unanswered(
    session: Session, ids: Sequence[int], fields: FaqFields, by: str
) -> tuple[FaqEntry, list[UnansweredQuestion]]:
    """A draft FAQ entry answering the questions ``ids``, which are marked handled in the same transaction.
    An empty question takes the first citizen question's text; the other citizens' wordings that are not
    already among the phrasings become similar questions, so the entry matches how people actually asked."""
    rows = _unanswered_rows(session, ids)
    question = fields.question.strip() or rows[0].query
    taken = {surface_key(question), *(surface_key(q) for q in fields.similar_questions)}
    similar = list(fields.similar_questions)
    for row in rows:
        if surface_key(row.query) not in taken:
            taken.add(surface_key(row.query))
            similar.append(row.query)
    faq = create_faq(session, replace(fields, question=question, similar_questions=tuple(similar)), by)
    return faq, mark_handled_many(session, [r.id for r in rows])


def mark_handled(session: Session, question_id: int, handled: bool = True) -> UnansweredQuestion:
    row = session.get(UnansweredQuestion, question_id)
    if row is None:
        raise not_found("未解答问题", "unanswered_question", question_id)
    row.handled = handled
    session.flush()
    return row
