"""Values shared by the store, the index builder and the searcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal


@dataclass(frozen=True)
class Citation:
    title: str
    section: str | None
    version: int | None
    effective_date: date | None
    source_url: str | None
    document_id: int | None = None


@dataclass(frozen=True)
class Passage:
    """One searchable unit: a chunk of a published document or a FAQ entry (one per phrasing is the
    indexer's choice). ``key`` is stable across index builds and unique within one."""

    key: str
    kind: Literal["chunk", "faq"]
    text: str  # what is embedded and matched
    citation: Citation
    answer: str | None = None  # for FAQ entries: the curated answer
    faq_id: int | None = None
    document_id: int | None = None
    expiry_date: date | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # fused, calibrated to [0, 1]
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores, for hit testing


@dataclass(frozen=True)
class SearchResult:
    query: str
    answered: bool
    answer: str | None  # the text to show: a FAQ's curated answer or the best chunk
    hits: tuple[Hit, ...]  # ranked; when not answered, these are the near-misses ("did you mean")
    citations: tuple[Citation, ...] = ()
    direct_faq: bool = False  # cleared the high threshold: the curated answer is given as is
