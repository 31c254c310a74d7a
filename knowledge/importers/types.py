"""What every importer produces: plain parsed records, not yet in the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


class ImportFormatError(ValueError):
    """A file or one of its rows cannot be imported; names the file, the place and the reason in both languages."""

    def __init__(self, file: str, location: str | None, reason_zh: str, reason_en: str) -> None:
        self.file = file
        self.location = location
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        where = f"{file}" + (f" ({location})" if location else "")
        super().__init__(f"{where}: {reason_zh} / {reason_en}")


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    body: str  # Markdown: headings mark sections
    source_key: str
    department: str | None = None
    service_item: str | None = None
    source_url: str | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedFaq:
    question: str
    answer: str
    location: str  # "row 3" / "line 7", for error messages
    similar_questions: tuple[str, ...] = ()
    category: str | None = None
    external_id: str | None = None
    document_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedFile:
    name: str
    documents: tuple[ParsedDocument, ...] = ()
    faqs: tuple[ParsedFaq, ...] = field(default_factory=tuple)
