"""Importers: one parser per format, chosen by file extension; all return a ``ParsedFile``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from knowledge.importers.faq_sheets import parse_csv, parse_jsonl, parse_xlsx
from knowledge.importers.markdown import parse_markdown
from knowledge.importers.pdf import parse_pdf
from knowledge.importers.types import ImportFormatError, ParsedDocument, ParsedFaq, ParsedFile
from knowledge.importers.word import parse_docx

__all__ = [
    "ImportFormatError",
    "ParsedDocument",
    "ParsedFaq",
    "ParsedFile",
    "SUPPORTED_SUFFIXES",
    "parse_file",
]

_DOCUMENT_PARSERS: dict[str, Callable[[str, bytes], ParsedDocument]] = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".txt": parse_markdown,
    ".docx": parse_docx,
    ".pdf": parse_pdf,
}
_FAQ_PARSERS: dict[str, Callable[[str, bytes], list[ParsedFaq]]] = {
    ".csv": parse_csv,
    ".xlsx": parse_xlsx,
    ".jsonl": parse_jsonl,
}
SUPPORTED_SUFFIXES = tuple(sorted({*_DOCUMENT_PARSERS, *_FAQ_PARSERS}))


def parse_file(name: str, data: bytes) -> ParsedFile:
    suffix = PurePath(name).suffix.lower()
    if suffix in _DOCUMENT_PARSERS:
        return ParsedFile(name, documents=(_DOCUMENT_PARSERS[suffix](name, data),))
    if suffix in _FAQ_PARSERS:
        faqs = _FAQ_PARSERS[suffix](name, data)
        if not faqs:
            raise ImportFormatError(name, None, "文件中没有问答条目", "the file has no FAQ entries")
        return ParsedFile(name, faqs=tuple(faqs))
    raise ImportFormatError(
        name,
        None,
        f"不支持的文件类型 {suffix or '（无扩展名）'}，支持：{' '.join(SUPPORTED_SUFFIXES)}",
        f"unsupported file type {suffix or '(none)'}; supported: {' '.join(SUPPORTED_SUFFIXES)}",
    )
