"""PDF documents (pypdf): page text, one paragraph per line; the metadata title when there is one."""

from __future__ import annotations

import io
from pathlib import PurePath

from knowledge.importers.types import ImportFormatError, ParsedDocument


def parse_pdf(name: str, data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PyPdfError, ValueError, KeyError, OSError) as err:
        raise ImportFormatError(
            name, None, f"无法读取 PDF 文件：{err}", f"cannot read PDF file: {err}"
        ) from None
    body = "\n".join(p for p in pages if p).strip()
    if not body:
        raise ImportFormatError(
            name, None, "PDF 中没有可提取的文字（可能是扫描件）", "no extractable text (a scanned PDF?)"
        )
    title = str(meta_title).strip() or PurePath(name).stem
    return ParsedDocument(title=title, body=body, source_key=PurePath(name).name)
