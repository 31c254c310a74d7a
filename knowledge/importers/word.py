"""DOCX documents (python-docx): ``Heading N`` / ``标题 N`` paragraph styles become Markdown sections."""

from __future__ import annotations

import io
import re
from pathlib import PurePath

from knowledge.importers.types import ImportFormatError, ParsedDocument

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.I)


def parse_docx(name: str, data: bytes) -> ParsedDocument:
    import docx  # python-docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises several unrelated types for a broken file
        raise ImportFormatError(
            name, None, f"无法读取 DOCX 文件：{err}", f"cannot read DOCX file: {err}"
        ) from None
    lines: list[str] = []
    first_title: str | None = None
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        style = (para.style.name if para.style is not None else "") or ""
        m = _HEADING_STYLE.match(style.strip())
        if style.strip().lower() == "title":
            first_title = first_title or text
            lines.append(f"# {text}")
        elif m:
            lines.append(f"{'#' * max(1, min(6, int(m.group(1))))} {text}")
        else:
            lines.append(text)
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                lines.append("；".join(cells) + "。")
    body = "\n".join(lines).strip()
    if not body:
        raise ImportFormatError(name, None, "文档正文为空", "the document body is empty")
    core_title = (document.core_properties.title or "").strip()
    title = core_title or first_title or PurePath(name).stem
    return ParsedDocument(title=title, body=body, source_key=PurePath(name).name)
