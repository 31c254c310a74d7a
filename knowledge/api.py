"""The editor API: ``make_router(service_provider, get_current_user)`` returns a FastAPI router under /api/kb.

Routes are plain ``def`` functions: FastAPI runs them in its thread pool, which keeps database access and
index builds (CPU-heavy) off the event loop. Every error is JSON ``{"code", "message_zh", "message_en"}``.
Authentication is plugged in by passing ``get_current_user``; the user's name is recorded as the author of
versions and index builds.
"""

# no ``from __future__ import annotations``: FastAPI must see the dependency aliases defined inside
# make_router as real objects, not as strings it would look up in this module's globals
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from knowledge import repository as repo
from knowledge.markdown_preview import MAX_PREVIEW_CHARS, render_preview
from knowledge.publishing import IndexVersionInfo
from knowledge.question_groups import QuestionGroup
from knowledge.repository import DocumentFields, FaqFields, KnowledgeError
from knowledge.service import ImportFailed, KnowledgeService
from knowledge.types import Citation, Hit, SearchResult

# ---- models ------------------------------------------------------------------------------------------------


class DocumentBase(BaseModel):
    title: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1)
    department: str | None = None
    service_item: str | None = None
    source_url: str | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    tags: list[str] = Field(default_factory=list)


class DocumentCreate(DocumentBase):
    model_config = ConfigDict(extra="forbid")


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=500)
    body: str | None = Field(default=None, min_length=1)
    department: str | None = None
    service_item: str | None = None
    source_url: str | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    tags: list[str] | None = None


class DocumentPublic(DocumentBase):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    current_version: int
    published_version: int | None
    source_key: str | None
    created_at: datetime
    updated_at: datetime


class DocumentList(BaseModel):
    items: list[DocumentPublic]
    total: int


class DocumentVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    created_by: str
    created_at: datetime
    content_hash: str


class DocumentVersions(BaseModel):
    document_id: int
    versions: list[DocumentVersionPublic]
    diff: str | None = None  # unified diff between ``diff_from`` and ``diff_to`` when both are given


class FaqBase(BaseModel):
    question: str = ""
    answer: str = Field(min_length=1)
    similar_questions: list[str] = Field(default_factory=list)
    category: str | None = None
    document_ids: list[int] = Field(default_factory=list)


class FaqCreate(FaqBase):
    model_config = ConfigDict(extra="forbid")


class FaqUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str | None = None
    answer: str | None = Field(default=None, min_length=1)
    similar_questions: list[str] | None = None
    category: str | None = None
    document_ids: list[int] | None = None


class FaqPublic(FaqBase):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: str
    external_id: str | None
    document_refs: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


class FaqList(BaseModel):
    items: list[FaqPublic]
    total: int


class FileReportPublic(BaseModel):
    name: str
    status: str
    created: int
    updated: int
    duplicate: int
    location: str | None
    error_zh: str | None
    error_en: str | None


class ImportResponse(BaseModel):
    ok: bool
    files: list[FileReportPublic]
    totals: dict[str, int]


class IndexVersionPublic(BaseModel):
    id: int
    status: str
    passage_count: int
    created_by: str
    created_at: datetime | None = None
    error: str | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=1000)
    k: int = Field(default=5, ge=1, le=50)


class CitationPublic(BaseModel):
    title: str
    section: str | None
    version: int | None
    effective_date: date | None
    source_url: str | None
    document_id: int | None


class HitPublic(BaseModel):
    key: str
    kind: str
    text: str
    score: float
    scores: dict[str, float]  # per retriever, plus "fused"
    citation: CitationPublic
    answer: str | None
    faq_id: int | None
    document_id: int | None


class SearchResponse(BaseModel):
    query: str
    answered: bool
    answer: str | None
    direct_faq: bool
    live_version: int | None
    hits: list[HitPublic]
    citations: list[CitationPublic]
    near_misses: list[HitPublic]  # when not answered: what a "did you mean" would offer
    answer_threshold: float | None = None  # the confidence (a hit's score) an answer needs


class UnansweredPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    query: str
    normalized: str
    count: int
    first_asked: datetime
    last_asked: datetime
    handled: bool
    near_miss_keys: list[str]


class UnansweredGroupPublic(BaseModel):
    """Near-duplicate unanswered questions (``knowledge.question_groups``), the most asked one first."""

    question: str  # the representative: the most asked wording
    count: int  # times asked, all wordings together
    first_asked: datetime
    last_asked: datetime
    ids: list[int]
    members: list[UnansweredPublic]


# a database id or version number: bounded, so a huge number is a 422 rather than an integer overflow in the
# database driver (a 500)
MAX_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class QuestionIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[RowId] = Field(min_length=1, max_length=500)


class FaqFromUnanswered(BaseModel):
    """A FAQ entry answering citizens' unanswered questions; an empty ``question`` takes the first one's text."""

    model_config = ConfigDict(extra="forbid")
    question_ids: list[RowId] = Field(min_length=1, max_length=500)
    question: str = Field(default="", max_length=1000)
    answer: str = Field(min_length=1, max_length=20_000)
    similar_questions: list[str] = Field(default_factory=list, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    document_ids: list[RowId] = Field(default_factory=list, max_length=50)


class FaqFromUnansweredResult(BaseModel):
    faq: FaqPublic
    handled: list[UnansweredPublic]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    markdown: str = Field(max_length=MAX_PREVIEW_CHARS)


class PreviewResponse(BaseModel):
    html: str  # sanitized: raw HTML in the source is escaped, unsafe link schemes dropped


class DiffLinePublic(BaseModel):
    op: str  # "hunk", "add", "del" or "ctx"
    text: str
    old: int | None
    new: int | None


class DocumentDiff(BaseModel):
    document_id: int
    from_version: int
    to_version: int
    unified: str
    lines: list[DiffLinePublic]


class PendingCounts(BaseModel):
    documents: int  # new or edited since the last publish
    faq: int  # draft entries


class FacetsPublic(BaseModel):
    departments: list[str]
    service_items: list[str]
    categories: list[str]
    pending: PendingCounts


def _group_public(group: QuestionGroup) -> UnansweredGroupPublic:
    return UnansweredGroupPublic(
        question=group.representative.query,
        count=group.count,
        first_asked=group.first_asked,
        last_asked=group.last_asked,
        ids=group.ids,
        members=[UnansweredPublic.model_validate(m) for m in group.members],
    )


def _citation(c: Citation) -> CitationPublic:
    return CitationPublic(
        title=c.title,
        section=c.section,
        version=c.version,
        effective_date=c.effective_date,
        source_url=c.source_url,
        document_id=c.document_id,
    )


def _hit(h: Hit) -> HitPublic:
    p = h.passage
    return HitPublic(
        key=p.key,
        kind=p.kind,
        text=p.text,
        score=h.score,
        scores=h.scores,
        citation=_citation(p.citation),
        answer=p.answer,
        faq_id=p.faq_id,
        document_id=p.document_id,
    )


def search_response(result: SearchResult, live_version: int | None) -> SearchResponse:
    hits = [_hit(h) for h in result.hits]
    return SearchResponse(
        query=result.query,
        answered=result.answered,
        answer=result.answer,
        direct_faq=result.direct_faq,
        live_version=live_version,
        hits=hits,
        citations=[_citation(c) for c in result.citations],
        near_misses=[] if result.answered else hits,
    )


def _version_public(info: IndexVersionInfo) -> IndexVersionPublic:
    return IndexVersionPublic(
        id=info.id,
        status=info.status,
        passage_count=info.passage_count,
        created_by=info.created_by,
        created_at=info.created_at,
        error=info.error,
    )


# ---- errors ------------------------------------------------------------------------------------------------


def error_response(err: KnowledgeError) -> JSONResponse:
    body: dict[str, Any] = err.to_dict()
    if isinstance(err, ImportFailed):
        body["report"] = ImportResponse(
            ok=False, files=[FileReportPublic(**vars(f)) for f in err.report.files], totals=err.report.totals
        ).model_dump()
    return JSONResponse(body, status_code=err.status)


class KnowledgeRoute(APIRoute):
    """Turns the knowledge base's errors and request validation errors into the project's JSON error shape;
    done per route because a router cannot install app-wide exception handlers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except KnowledgeError as err:
                return error_response(err)
            except RequestValidationError as err:
                errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in err.errors()]
                return JSONResponse(
                    {
                        "code": "kb.invalid_request",
                        "message_zh": "请求参数无效",
                        "message_en": "invalid request",
                        "errors": errors,
                    },
                    status_code=422,
                )

        return handle


def anonymous_user() -> str:
    return "anonymous"


def user_name(user: object) -> str:
    if isinstance(user, str):
        return user
    for attr in ("username", "name", "id"):
        value = getattr(user, attr, None)
        if value:
            return str(value)
    return str(user)


# ---- routes ------------------------------------------------------------------------------------------------


def make_router(
    service_provider: Callable[[], KnowledgeService],
    get_current_user: Callable[..., Any] = anonymous_user,
) -> APIRouter:
    router = APIRouter(prefix="/api/kb", tags=["knowledge base"], route_class=KnowledgeRoute)
    Service = Annotated[KnowledgeService, Depends(service_provider)]
    User = Annotated[Any, Depends(get_current_user)]

    # documents

    @router.get("/facets", response_model=FacetsPublic)
    def facets(service: Service, _user: User) -> FacetsPublic:
        with service.session_factory() as s:
            f = repo.facets(s)
            return FacetsPublic(
                departments=f.departments,
                service_items=f.service_items,
                categories=f.categories,
                pending=PendingCounts(documents=f.pending_documents, faq=f.pending_faq),
            )

    @router.post("/preview", response_model=PreviewResponse)
    def preview(body: PreviewRequest, _user: User) -> PreviewResponse:
        return PreviewResponse(html=render_preview(body.markdown))

    @router.get("/documents", response_model=DocumentList)
    def list_documents(
        service: Service,
        _user: User,
        q: str | None = None,
        status: str | None = None,
        department: str | None = None,
        service_item: str | None = None,
        tag: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> DocumentList:
        with service.session_factory() as s:
            docs, total = repo.list_documents(
                s,
                q=q,
                status=status,
                department=department,
                service_item=service_item,
                tag=tag,
                limit=limit,
                offset=offset,
            )
            return DocumentList(items=[DocumentPublic.model_validate(d) for d in docs], total=total)

    @router.post("/documents", response_model=DocumentPublic, status_code=201)
    def create_document(body: DocumentCreate, service: Service, user: User) -> DocumentPublic:
        fields = DocumentFields(**{**body.model_dump(), "tags": tuple(body.tags)})
        with service.session_factory() as s, s.begin():
            doc = repo.create_document(s, fields, user_name(user), service.chunk_settings)
            return DocumentPublic.model_validate(doc)

    @router.get("/documents/{doc_id}", response_model=DocumentPublic)
    def get_document(doc_id: IdPath, service: Service, _user: User) -> DocumentPublic:
        with service.session_factory() as s:
            return DocumentPublic.model_validate(repo.get_document(s, doc_id))

    @router.put("/documents/{doc_id}", response_model=DocumentPublic)
    def update_document(doc_id: IdPath, body: DocumentUpdate, service: Service, user: User) -> DocumentPublic:
        # an explicit null clears an optional field, but a title or body can only be replaced
        changes = {
            k: v
            for k, v in body.model_dump(exclude_unset=True).items()
            if v is not None or k not in ("title", "body")
        }
        with service.session_factory() as s, s.begin():
            doc, _ = repo.update_document(s, doc_id, changes, user_name(user), service.chunk_settings)
            return DocumentPublic.model_validate(doc)

    @router.post("/documents/{doc_id}/archive", response_model=DocumentPublic)
    def archive_document(doc_id: IdPath, service: Service, _user: User) -> DocumentPublic:
        with service.session_factory() as s, s.begin():
            return DocumentPublic.model_validate(repo.archive_document(s, doc_id))

    # the singular path was the first one published; kept as a deprecated alias so callers written against it work
    @router.get("/document/{doc_id}/versions", response_model=DocumentVersions, deprecated=True)
    @router.get("/documents/{doc_id}/versions", response_model=DocumentVersions)
    def document_versions(
        doc_id: IdPath,
        service: Service,
        _user: User,
        diff_from: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        diff_to: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> DocumentVersions:
        with service.session_factory() as s:
            versions = [DocumentVersionPublic.model_validate(v) for v in repo.document_versions(s, doc_id)]
            diff = None
            if diff_from is not None or diff_to is not None:
                latest = versions[-1].version
                old = diff_from if diff_from is not None else max(1, latest - 1)
                diff = repo.diff_versions(s, doc_id, old, diff_to if diff_to is not None else latest)
            return DocumentVersions(document_id=doc_id, versions=versions, diff=diff)

    @router.get("/documents/{doc_id}/diff", response_model=DocumentDiff)
    def document_diff(
        doc_id: IdPath,
        service: Service,
        _user: User,
        from_version: Annotated[int | None, Query(alias="from", ge=1, le=MAX_ID)] = None,
        to_version: Annotated[int | None, Query(alias="to", ge=1, le=MAX_ID)] = None,
    ) -> DocumentDiff:
        """Line diff between two versions (default: the previous and the current one)."""
        with service.session_factory() as s:
            latest = repo.get_document(s, doc_id).current_version
            new = to_version if to_version is not None else latest
            old = from_version if from_version is not None else max(1, new - 1)
            lines = repo.diff_lines(s, doc_id, old, new)
            return DocumentDiff(
                document_id=doc_id,
                from_version=old,
                to_version=new,
                unified=repo.diff_versions(s, doc_id, old, new),
                lines=[DiffLinePublic(op=d.op, text=d.text, old=d.old, new=d.new) for d in lines],
            )

    # FAQ

    @router.get("/faq", response_model=FaqList)
    def list_faqs(
        service: Service,
        _user: User,
        q: str | None = None,
        category: str | None = None,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> FaqList:
        with service.session_factory() as s:
            rows, total = repo.list_faqs(s, q=q, category=category, status=status, limit=limit, offset=offset)
            return FaqList(items=[FaqPublic.model_validate(r) for r in rows], total=total)

    @router.post("/faq", response_model=FaqPublic, status_code=201)
    def create_faq(body: FaqCreate, service: Service, user: User) -> FaqPublic:
        fields = FaqFields(
            question=body.question,
            answer=body.answer,
            similar_questions=tuple(body.similar_questions),
            category=body.category,
            document_ids=tuple(body.document_ids),
        )
        with service.session_factory() as s, s.begin():
            return FaqPublic.model_validate(repo.create_faq(s, fields, user_name(user)))

    @router.get("/faq/{faq_id}", response_model=FaqPublic)
    def get_faq(faq_id: IdPath, service: Service, _user: User) -> FaqPublic:
        with service.session_factory() as s:
            return FaqPublic.model_validate(repo.get_faq(s, faq_id))

    @router.put("/faq/{faq_id}", response_model=FaqPublic)
    def update_faq(faq_id: IdPath, body: FaqUpdate, service: Service, _user: User) -> FaqPublic:
        with service.session_factory() as s, s.begin():
            changes = {
                k: v
                for k, v in body.model_dump(exclude_unset=True).items()
                if v is not None or k not in ("question", "answer")
            }
            return FaqPublic.model_validate(repo.update_faq(s, faq_id, changes))

    @router.post("/faq/{faq_id}/archive", response_model=FaqPublic)
    def archive_faq(faq_id: IdPath, service: Service, _user: User) -> FaqPublic:
        with service.session_factory() as s, s.begin():
            return FaqPublic.model_validate(repo.archive_faq(s, faq_id))

    # import, publish, versions

    @router.post("/import", response_model=ImportResponse)
    def import_files(
        files: Annotated[list[UploadFile], File(description="Markdown, DOCX, PDF, XLSX, CSV or JSONL")],
        service: Service,
        user: User,
    ) -> ImportResponse:
        payload = [(f.filename or "upload", f.file.read()) for f in files]
        report = service.import_files(payload, user_name(user))
        return ImportResponse(
            ok=report.ok, files=[FileReportPublic(**vars(f)) for f in report.files], totals=report.totals
        )

    @router.post("/publish", response_model=IndexVersionPublic)
    def publish(service: Service, user: User) -> IndexVersionPublic:
        return _version_public(service.publish(user_name(user)))

    @router.get("/versions", response_model=list[IndexVersionPublic])
    def versions(service: Service, _user: User) -> list[IndexVersionPublic]:
        return [_version_public(v) for v in service.versions()]

    @router.post("/versions/{version_id}/rollback", response_model=IndexVersionPublic)
    def rollback(version_id: IdPath, service: Service, _user: User) -> IndexVersionPublic:
        return _version_public(service.rollback(version_id))

    # hit testing and unanswered questions

    @router.post("/search", response_model=SearchResponse)
    def search(body: SearchRequest, service: Service, _user: User) -> SearchResponse:
        result = service.search(body.query, body.k, record=False)
        response = search_response(result, service.live_version)
        response.answer_threshold = service.config.answer_threshold
        return response

    @router.get("/unanswered", response_model=list[UnansweredPublic])
    def unanswered(
        service: Service,
        _user: User,
        include_handled: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[UnansweredPublic]:
        with service.session_factory() as s:
            rows = repo.list_unanswered(s, include_handled=include_handled, limit=limit)
            return [UnansweredPublic.model_validate(r) for r in rows]

    @router.get("/unanswered/groups", response_model=list[UnansweredGroupPublic])
    def unanswered_groups(
        service: Service,
        _user: User,
        include_handled: bool = False,
        limit: Annotated[int, Query(ge=1, le=2000)] = 500,
        threshold: Annotated[float | None, Query(gt=0, le=1)] = None,
    ) -> list[UnansweredGroupPublic]:
        with service.session_factory() as s:
            groups = repo.unanswered_groups(s, include_handled=include_handled, limit=limit, threshold=threshold)
            return [_group_public(g) for g in groups]

    @router.post("/unanswered/handled", response_model=list[UnansweredPublic])
    def mark_many_handled(body: QuestionIds, service: Service, _user: User) -> list[UnansweredPublic]:
        with service.session_factory() as s, s.begin():
            return [UnansweredPublic.model_validate(r) for r in repo.mark_handled_many(s, body.ids)]

    @router.post("/unanswered/faq", response_model=FaqFromUnansweredResult, status_code=201)
    def faq_from_unanswered(body: FaqFromUnanswered, service: Service, user: User) -> FaqFromUnansweredResult:
        """Turn citizens' questions into a draft FAQ entry and mark them handled, in one transaction."""
        fields = FaqFields(
            question=body.question,
            answer=body.answer,
            similar_questions=tuple(body.similar_questions),
            category=body.category,
            document_ids=tuple(body.document_ids),
        )
        with service.session_factory() as s, s.begin():
            faq, rows = repo.faq_from_unanswered(s, body.question_ids, fields, user_name(user))
            return FaqFromUnansweredResult(
                faq=FaqPublic.model_validate(faq), handled=[UnansweredPublic.model_validate(r) for r in rows]
            )

    @router.post("/unanswered/{question_id}/handled", response_model=UnansweredPublic)
    def mark_handled(question_id: IdPath, service: Service, _user: User) -> UnansweredPublic:
        with service.session_factory() as s, s.begin():
            return UnansweredPublic.model_validate(repo.mark_handled(s, question_id))

    return router
