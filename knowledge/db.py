"""The knowledge base in SQL: models, engine and session factory, and programmatic Alembic migrations.

Types are kept portable (JSON via ``sqlalchemy.JSON``, timezone-aware datetimes) so the same models run on the
default SQLite file and on PostgreSQL given by URL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

DOCUMENT_STATUSES = ("draft", "published", "archived")
# retired: an old previous version whose files were deleted (see KnowledgeConfig.keep_index_versions)
INDEX_STATUSES = ("building", "live", "previous", "failed", "retired")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend: SQLite keeps no offset, so values read back are marked UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use UTC-aware datetimes / 请使用带时区的 UTC 时间")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Document(Base):
    """The working copy of a document; ``current_version`` is the latest edit, ``published_version`` the one
    the live index was built from (None until first published)."""

    __tablename__ = "kb_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(200))
    service_item: Mapped[str | None] = mapped_column(String(200))
    source_url: Mapped[str | None] = mapped_column(String(1000))
    effective_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    # the imported file name, so re-importing an edited file updates the document instead of duplicating it
    source_key: Mapped[str | None] = mapped_column(String(500), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document", order_by="DocumentVersion.version", cascade="all, delete-orphan"
    )


class DocumentVersion(Base):
    __tablename__ = "kb_document_versions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    # the full document as it was (title, body and metadata), so any two versions can be diffed or restored
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)

    document: Mapped[Document] = relationship(back_populates="versions")


class Chunk(Base):
    __tablename__ = "kb_chunks"
    __table_args__ = (UniqueConstraint("document_id", "version", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)


class FaqEntry(Base):
    __tablename__ = "kb_faq_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    similar_questions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(200))
    document_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # links by imported file name, resolved when passages are built (the document may be imported later)
    document_refs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IndexVersion(Base):
    __tablename__ = "kb_index_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    passage_count: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default="building", index=True)
    error: Mapped[str | None] = mapped_column(Text)


class UnansweredQuestion(Base):
    __tablename__ = "kb_unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    query: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(String(1000), unique=True)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_asked: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_asked: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handled: Mapped[bool] = mapped_column(Boolean, default=False)
    near_miss_keys: Mapped[list[Any]] = mapped_column(JSON, default=list)


def resolve_url(url: str, project_dir: Path | None = None) -> str:
    """A relative SQLite path is taken against the project directory, whose folder is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    path = Path(parsed.database)
    if not path.is_absolute() and project_dir is not None:
        path = Path(project_dir) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return parsed.set(database=str(path.resolve())).render_as_string(hide_password=False)


# libpq waits this long for a TCP connection (its minimum is 2 s); its default is forever, which on an unreachable
# host would hold the request, and the event-loop thread making it, until the kernel gives up.
PG_CONNECT_TIMEOUT_S = 3


def engine_options(url: str) -> dict[str, Any]:
    """``create_engine`` arguments that make a database outage fail fast and heal without a restart (every engine
    of the process uses them: ``assistant.outage`` turns the failure into a 503).

    ``pool_pre_ping`` tests a pooled connection before handing it out, so connections broken during an outage are
    replaced instead of failing the first requests after it. A ``connect_timeout`` already in the URL wins.
    """
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        options["pool_pre_ping"] = True
        if "connect_timeout" not in parsed.query and parsed.get_driver_name() in ("psycopg", "psycopg2"):
            options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return options


def make_engine(url: str) -> Engine:
    engine = create_engine(url, future=True, **engine_options(url))
    if engine.dialect.name == "sqlite":
        # WAL lets searches (which record unanswered questions) write while a publish reads
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False, future=True)


def migrate(url: str | Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations from code (no alembic.ini)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = url if isinstance(url, Engine) else make_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    if not isinstance(url, Engine):
        engine.dispose()
