"""Index versions: build next to the live one, swap atomically, roll back, follow other processes' publishes.

On disk: ``<root>/<version id>/`` holds one saved index, ``<root>/LIVE`` names the live one. The pointer is
replaced with ``os.replace`` (atomic on POSIX and Windows), and the in-memory reference is swapped under a lock
only after the new index is complete, so a concurrent search sees either the old index or the new one, never
a half-built one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.config import KnowledgeConfig
from knowledge.db import IndexVersion, utcnow
from knowledge.repository import (
    KnowledgeError,
    collect_passages,
    get_index_version,
    make_live,
    promote,
)
from knowledge.types import Passage, SearchResult

log = logging.getLogger(__name__)

LIVE_POINTER = "LIVE"


class SearchableIndex(Protocol):
    def search(self, query: str, k: int = 5, today: date | None = None) -> SearchResult: ...

    def save(self, directory: Path) -> None: ...


@dataclass(frozen=True)
class IndexBackend:
    """How to build an index from passages and load a saved one; the retrieval package provides the real one."""

    build: Callable[[Sequence[Passage]], SearchableIndex]
    load: Callable[[Path], SearchableIndex]


def retrieval_backend(embedder: object, config: KnowledgeConfig, cache_dir: Path | None) -> IndexBackend:
    from knowledge.retrieval import SearchIndex, build_index
    from nlu.tokenizer import ChineseTokenizer

    # one tokenizer (a spaCy pipeline with jieba, slow to create) shared by every index version this
    # process builds or loads
    tokenizers: list[ChineseTokenizer] = []
    lock = threading.Lock()

    def tokenizer() -> ChineseTokenizer:
        with lock:
            if not tokenizers:
                tokenizers.append(ChineseTokenizer())
            return tokenizers[0]

    def build(passages: Sequence[Passage]) -> SearchableIndex:
        return build_index(passages, embedder, cache_dir, config, tokenizer=tokenizer())  # type: ignore[arg-type]

    def load(directory: Path) -> SearchableIndex:
        return SearchIndex.load(directory, embedder, tokenizer=tokenizer())  # type: ignore[arg-type]

    return IndexBackend(build=build, load=load)


@dataclass(frozen=True)
class LiveIndex:
    version_id: int
    index: SearchableIndex


@dataclass(frozen=True)
class IndexVersionInfo:
    id: int
    status: str
    passage_count: int
    created_by: str
    path: str | None
    error: str | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, row: IndexVersion) -> IndexVersionInfo:
        return cls(row.id, row.status, row.passage_count, row.created_by, row.path, row.error, row.created_at)


class IndexSlot:
    """The live index of this process. Reading is a single attribute load; swapping holds a lock so two
    swaps (a publish and a reload) cannot interleave."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: LiveIndex | None = None

    @property
    def live(self) -> LiveIndex | None:
        return self._live

    def swap(self, new: LiveIndex) -> LiveIndex | None:
        with self._lock:
            old, self._live = self._live, new
            return old

    def swap_unless_current(self, new: LiveIndex, pointer: int) -> bool:
        with self._lock:
            if self._live is not None and self._live.version_id == pointer:
                return False
            self._live = new
            return True


def read_live_pointer(root: Path) -> int | None:
    try:
        text = (root / LIVE_POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_live_pointer(root: Path, version_id: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".LIVE.", text=True)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{version_id}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / LIVE_POINTER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Publisher:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        backend: IndexBackend,
        root: Path,
        slot: IndexSlot,
        today: Callable[[], date] = date.today,
        keep_versions: int = 5,
    ) -> None:
        self._sessions = session_factory
        self._backend = backend
        self._root = Path(root)
        self._slot = slot
        self._today = today
        self._keep = keep_versions
        # one build at a time per process; the database row tells other processes a build is running
        self._publish_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._missing_reported: int | None = None

    def publish(self, by: str) -> IndexVersionInfo:
        with self._publish_lock:
            with self._sessions() as session, session.begin():
                built = collect_passages(session, include_drafts=True, today=self._today())
                row = IndexVersion(created_by=by, created_at=utcnow(), passage_count=len(built.passages))
                row.status = "building"
                session.add(row)
                session.flush()
                version_id = row.id
                row.path = str(self._root / str(version_id))
            directory = self._root / str(version_id)
            staging = self._root / f".building-{version_id}"
            try:
                index = self._backend.build(built.passages)
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                index.save(staging)
                os.replace(staging, directory)
            except Exception as err:
                shutil.rmtree(staging, ignore_errors=True)
                self._mark_failed(version_id, f"{type(err).__name__}: {err}")
                log.exception("index build %s failed", version_id)
                raise KnowledgeError(
                    "kb.publish_failed",
                    f"索引版本 {version_id} 构建失败，线上索引未改变：{err}",
                    f"building index version {version_id} failed; the live index is unchanged: {err}",
                    500,
                ) from err
            with self._sessions() as session, session.begin():
                promote(session, built)
                info = IndexVersionInfo.of(make_live(session, version_id))
            write_live_pointer(self._root, version_id)
            self._slot.swap(LiveIndex(version_id, index))
            self._retire_old_versions()
            return info

    def rollback(self, version_id: int) -> IndexVersionInfo:
        """Make an earlier complete version live again (documents keep their status; only what is served
        changes)."""
        with self._publish_lock:
            with self._sessions() as session:
                row = get_index_version(session, version_id)
                if row.status not in ("live", "previous"):
                    raise KnowledgeError(
                        "kb.version_not_servable",
                        f"索引版本 {version_id} 状态为 {row.status}，不能回滚到该版本",
                        f"index version {version_id} is {row.status} and cannot be made live",
                        409,
                    )
            directory = self._root / str(version_id)
            if not directory.is_dir():
                raise KnowledgeError(
                    "kb.version_missing",
                    f"索引版本 {version_id} 的文件已不存在",
                    f"the files of index version {version_id} are gone",
                    409,
                )
            index = self._backend.load(directory)
            with self._sessions() as session, session.begin():
                info = IndexVersionInfo.of(make_live(session, version_id))
            write_live_pointer(self._root, version_id)
            self._slot.swap(LiveIndex(version_id, index))
            return info

    def reload_if_changed(self, *, wait: bool = True) -> bool:
        """Follow the LIVE pointer written by any process; True when a different version was loaded. With
        ``wait=False`` a reload already running in another thread is not waited for (searches keep using the
        index they have)."""
        if not self._reload_lock.acquire(blocking=wait):
            return False
        try:
            pointer = read_live_pointer(self._root)
            live = self._slot.live
            if pointer is None or (live is not None and live.version_id == pointer):
                return False
            directory = self._root / str(pointer)
            if not directory.is_dir():
                # LIVE names a version whose files are not here: the index directory is not shared, or a copy
                # is still arriving. Keep serving what is loaded and say so once per version.
                if self._missing_reported != pointer:
                    self._missing_reported = pointer
                    log.warning(
                        "index version %s is live but %s does not exist; every replica must share the index "
                        "directory (docs/deployment.md). Still serving version %s.",
                        pointer, directory, live.version_id if live else None,
                    )
                return False
            index = self._backend.load(directory)
            return self._slot.swap_unless_current(LiveIndex(pointer, index), pointer)
        finally:
            self._reload_lock.release()

    def _retire_old_versions(self) -> None:
        """Keep the newest ``keep_versions`` previous versions on disk for rollback; delete older ones."""
        with self._sessions() as session, session.begin():
            rows = list(
                session.scalars(
                    select(IndexVersion)
                    .where(IndexVersion.status == "previous")
                    .order_by(IndexVersion.id.desc())
                )
            )
            for row in rows[self._keep :]:
                shutil.rmtree(self._root / str(row.id), ignore_errors=True)
                row.status = "retired"

    def _mark_failed(self, version_id: int, error: str) -> None:
        with self._sessions() as session, session.begin():
            row = session.get(IndexVersion, version_id)
            if row is not None:
                row.status = "failed"
                row.error = error[:4000]
