"""``KnowledgeService``: the one object the assistant, the editor API and the CLI talk to."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.config import KnowledgeConfig
from knowledge.importers import SUPPORTED_SUFFIXES, ImportFormatError, ParsedFile, parse_file
from knowledge.importers.apply import FileReport, apply_file
from knowledge.publishing import (
    IndexBackend,
    IndexSlot,
    IndexVersionInfo,
    Publisher,
    retrieval_backend,
)
from knowledge.repository import ChunkSettings, KnowledgeError, list_index_versions, record_unanswered
from knowledge.types import SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportReport:
    ok: bool
    files: tuple[FileReport, ...]

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(f, k) for f in self.files) for k in ("created", "updated", "duplicate")}


class ImportFailed(KnowledgeError):
    """Nothing of the import was written; ``report`` names each failing file, its row or line, and why."""

    def __init__(self, report: ImportReport) -> None:
        failed = [f for f in report.files if f.status == "failed"]
        first = failed[0]
        where = f"{first.name}" + (f" ({first.location})" if first.location else "")
        more_zh = f"（另有 {len(failed) - 1} 个文件失败）" if len(failed) > 1 else ""
        more_en = f" (and {len(failed) - 1} more files)" if len(failed) > 1 else ""
        super().__init__(
            "kb.import_failed",
            f"导入失败，未写入任何内容：{where}：{first.error_zh}{more_zh}",
            f"import failed, nothing was written: {where}: {first.error_en}{more_en}",
            422,
        )
        self.report = report


Progress = Callable[[str], None]


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files named, and files with a supported suffix inside folders named (recursively, sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise KnowledgeError(
                "kb.path_not_found", f"路径不存在：{path}", f"path does not exist: {path}", 404
            )
    return files


class KnowledgeService:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        embedder: object | None,
        config: KnowledgeConfig,
        index_root: Path,
        *,
        backend: IndexBackend | None = None,
        cache_dir: Path | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        """``embedder`` may be None for a process that only edits and imports; publishing and searching then
        need ``backend``. ``backend`` defaults to the retrieval package's index over ``embedder``."""
        self.session_factory = session_factory
        self.config = config
        self.index_root = Path(index_root)
        self._today = today
        self._chunks = ChunkSettings(config.chunk_max_chars, config.chunk_overlap_sentences)
        if backend is None and embedder is not None:
            backend = retrieval_backend(embedder, config, cache_dir or self.index_root / "cache")
        self._backend = backend
        self._slot = IndexSlot()
        self._publisher = (
            Publisher(
                session_factory, backend, self.index_root, self._slot, today, config.keep_index_versions
            )
            if backend
            else None
        )
        self._last_reload_check = float("-inf")
        # called with the version id after this process made a version live (publish or rollback); the server
        # passes one that signals the other replicas, so this package needs no message broker
        self.live_listeners: list[Callable[[int], None]] = []

    @property
    def chunk_settings(self) -> ChunkSettings:
        return self._chunks

    # ---- searching -------------------------------------------------------------------------------------

    @property
    def live_version(self) -> int | None:
        live = self._slot.live
        return live.version_id if live else None

    def search(
        self, query: str, k: int = 5, *, record: bool = True, today: date | None = None
    ) -> SearchResult:
        """Search the live index; a query it does not answer is counted in the unanswered-question list
        (``record=False`` for editors' hit testing)."""
        self._follow_other_processes()
        live = self._slot.live
        if live is None:
            result = SearchResult(query=query, answered=False, answer=None, hits=())
        else:
            result = live.index.search(query, k=k, today=today or self._today())
        if record and not result.answered:
            self._record_unanswered(result)
        return result

    def _follow_other_processes(self) -> None:
        """Pick up a version another process published: the LIVE pointer is read at most every
        ``reload_check_seconds`` (always while nothing is loaded yet)."""
        if self._publisher is None:
            return
        now = time.monotonic()
        interval = self.config.reload_check_seconds
        if self._slot.live is not None and (interval <= 0 or now - self._last_reload_check < interval):
            return
        self._last_reload_check = now
        try:
            self._publisher.reload_if_changed(wait=False)
        except Exception:
            # a broken or half-copied version on disk must not stop answering from the one already loaded
            log.exception("could not load the index version named by LIVE")

    def _record_unanswered(self, result: SearchResult) -> None:
        try:
            with self.session_factory() as session, session.begin():
                record_unanswered(session, result.query, [h.passage.key for h in result.hits[:5]])
        except Exception:
            # the citizen still gets "no answer"; losing one count must not fail the conversation
            log.exception("could not record an unanswered question")

    # ---- versions --------------------------------------------------------------------------------------

    def _require_publisher(self) -> Publisher:
        if self._publisher is None:
            raise KnowledgeError(
                "kb.no_embedder",
                "未配置向量模型，不能发布或检索",
                "no embedding model configured: cannot publish or search",
                503,
            )
        return self._publisher

    def publish(self, by: str) -> IndexVersionInfo:
        info = self._require_publisher().publish(by)
        self._announce_live(info.id)
        return info

    def rollback(self, version_id: int) -> IndexVersionInfo:
        info = self._require_publisher().rollback(version_id)
        self._announce_live(info.id)
        return info

    def _announce_live(self, version_id: int) -> None:
        """Tell ``live_listeners`` (other replicas, through whatever the composition root wired) that a new
        version is live; the index and its pointer are already on disk. A listener failing does not undo it."""
        for listener in list(self.live_listeners):
            try:
                listener(version_id)
            except Exception:
                log.exception("could not announce live index version %s", version_id)

    def reload_if_changed(self) -> bool:
        return self._require_publisher().reload_if_changed()

    def versions(self) -> list[IndexVersionInfo]:
        with self.session_factory() as session:
            return [IndexVersionInfo.of(r) for r in list_index_versions(session)]

    # ---- import ----------------------------------------------------------------------------------------

    def import_paths(self, paths: Iterable[Path], by: str, progress: Progress | None = None) -> ImportReport:
        """Import files and folders (recursively, supported suffixes only) in one transaction."""
        files = [(str(p), p.read_bytes()) for p in collect_files(paths)]
        return self.import_files(files, by, progress)

    def import_files(
        self, files: Sequence[tuple[str, bytes]], by: str, progress: Progress | None = None
    ) -> ImportReport:
        """Parse every file, then write all of them as drafts in ONE transaction. Raises ``ImportFailed``
        (nothing written) when any file or row is invalid; the live index is never touched by an import."""
        parsed: list[ParsedFile] = []
        failures: dict[str, FileReport] = {}
        for name, data in files:
            try:
                parsed.append(parse_file(name, data))
            except ImportFormatError as err:
                failures[name] = FileReport(
                    name, "failed", location=err.location, error_zh=err.reason_zh, error_en=err.reason_en
                )
            if progress:
                progress(name)
        if failures:
            raise ImportFailed(
                ImportReport(False, tuple(failures.get(n) or FileReport(n, "skipped") for n, _ in files))
            )
        # documents first, so FAQ entries linking to a document file find it
        ordered = sorted(parsed, key=lambda p: 0 if p.documents else 1)
        reports: dict[str, FileReport] = {}
        current = ""
        try:
            with self.session_factory() as session, session.begin():
                for item in ordered:
                    current = item.name
                    reports[item.name] = apply_file(session, item, by, self._chunks)
        except KnowledgeError as err:
            failed = FileReport(current, "failed", error_zh=err.message_zh, error_en=err.message_en)
            raise ImportFailed(
                ImportReport(
                    False, tuple(failed if n == current else FileReport(n, "skipped") for n, _ in files)
                )
            ) from err
        except (SQLAlchemyError, ValueError) as err:
            failed = FileReport(
                current, "failed", error_zh=f"写入数据库失败：{err}", error_en=f"database write failed: {err}"
            )
            raise ImportFailed(
                ImportReport(
                    False, tuple(failed if n == current else FileReport(n, "skipped") for n, _ in files)
                )
            ) from err
        return ImportReport(True, tuple(reports[n] for n, _ in files))


def open_knowledge(
    database_url: str, config: KnowledgeConfig, project_dir: Path, *, with_embedder: bool = True
) -> KnowledgeService:
    """The knowledge service of a project: database migrated (relative SQLite paths taken against
    ``project_dir``), embedder from config (None when ``with_embedder`` is False: import and edit only) and
    the index folder ``config.index_dir`` under the project."""
    from knowledge.db import make_engine, make_session_factory, migrate, resolve_url

    url = resolve_url(database_url, project_dir)
    migrate(url)
    embedder = None
    if with_embedder:
        from knowledge.embedders import make_embedder

        embedder = make_embedder(config, project_dir)
    index_root = Path(config.index_dir)
    if not index_root.is_absolute():
        index_root = Path(project_dir) / index_root
    return KnowledgeService(make_session_factory(make_engine(url)), embedder, config, index_root)


def seed_if_empty(
    service: KnowledgeService, paths: Iterable[Path], by: str = "seed"
) -> IndexVersionInfo | None:
    """First start of a project: import the shipped content and publish it, unless the knowledge base already
    has documents or FAQ entries (then the database, edited by editors, is the truth). Returns the version
    published, or None when nothing was done."""
    from sqlalchemy import exists, or_, select

    from knowledge.db import Document, FaqEntry

    with service.session_factory() as session:
        has_content = session.scalar(
            select(or_(exists().select_from(Document), exists().select_from(FaqEntry)))
        )
    existing = [Path(p) for p in paths if Path(p).exists()]
    if has_content or not existing:
        return None
    service.import_paths(existing, by)
    return service.publish(by)
