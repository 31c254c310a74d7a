"""FAQ pairs from spreadsheets (XLSX, CSV) and JSONL.

Sheets need a header row; columns are recognised in Chinese or English: 问题/question, 相似问题/similar questions
(several per cell, separated by line breaks, ``|`` or ``；``), 答案/answer, 分类/category, and optionally
编号/id and 文档/doc.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from knowledge.importers.markdown import decode_text
from knowledge.importers.types import ImportFormatError, ParsedFaq

_SIMILAR_SEP = re.compile(r"[\n|；;]+")
_HEADERS: dict[str, tuple[str, ...]] = {
    "question": ("问题", "标准问题", "question", "standard question"),
    "similar_questions": ("相似问题", "相似问法", "similar questions", "similar_questions", "similar"),
    "answer": ("答案", "回答", "answer"),
    "category": ("分类", "类别", "category"),
    "id": ("编号", "id"),
    "doc": ("文档", "关联文档", "doc", "document"),
}


def _header_field(cell: object) -> str | None:
    text = re.sub(r"\s+", " ", str(cell or "")).strip().lower().replace("_", " ")
    for field, names in _HEADERS.items():
        if text in {n.replace("_", " ") for n in names}:
            return field
    return None


def _rows_to_faqs(name: str, rows: Iterable[Sequence[Any]], first_row_number: int = 1) -> list[ParsedFaq]:
    iterator = iter(rows)
    header: dict[int, str] | None = None
    header_row = first_row_number - 1
    for row in iterator:
        header_row += 1
        if any(str(c or "").strip() for c in row):
            header = {i: f for i, c in enumerate(row) if (f := _header_field(c))}
            break
    if not header or not {"question", "answer"} <= set(header.values()):
        raise ImportFormatError(
            name,
            f"row {header_row}",
            "表头必须包含“问题”和“答案”列",
            "the header row must have 'question' and 'answer' columns",
        )
    faqs: list[ParsedFaq] = []
    for number, row in enumerate(iterator, start=header_row + 1):
        values = {
            f: str(row[i]).strip() if i < len(row) and row[i] is not None else "" for i, f in header.items()
        }
        if not any(values.values()):
            continue
        faqs.append(_make_faq(name, f"row {number}", values))
    return faqs


def _make_faq(name: str, location: str, values: dict[str, Any]) -> ParsedFaq:
    question = str(values.get("question") or "").strip()
    answer = str(values.get("answer") or "").strip()
    if not answer:
        raise ImportFormatError(name, location, "答案为空", "the answer is empty")
    similar = values.get("similar_questions") or ()
    if isinstance(similar, str):
        similar = _SIMILAR_SEP.split(similar)
    if not isinstance(similar, list | tuple):
        raise ImportFormatError(
            name, location, "相似问题必须是列表或文本", "similar questions must be a list or text"
        )
    doc = values.get("doc")
    refs = tuple(str(d).strip() for d in (doc if isinstance(doc, list) else [doc]) if d and str(d).strip())
    ext = values.get("id")
    return ParsedFaq(
        question=question,
        answer=answer,
        location=location,
        similar_questions=tuple(s.strip() for s in map(str, similar) if s.strip() and s.strip() != question),
        category=str(values.get("category") or "").strip() or None,
        external_id=str(ext).strip() if ext not in (None, "") else None,
        document_refs=refs,
    )


def parse_csv(name: str, data: bytes) -> list[ParsedFaq]:
    text = decode_text(data, name)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    return _rows_to_faqs(name, csv.reader(io.StringIO(text), dialect))


def parse_xlsx(name: str, data: bytes) -> list[ParsedFaq]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises zipfile/KeyError/InvalidFileException for broken files
        raise ImportFormatError(
            name, None, f"无法读取 XLSX 文件：{err}", f"cannot read XLSX file: {err}"
        ) from None
    try:
        return _rows_to_faqs(name, book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()


def parse_jsonl(name: str, data: bytes) -> list[ParsedFaq]:
    faqs: list[ParsedFaq] = []
    for number, line in enumerate(decode_text(data, name).splitlines(), start=1):
        if not line.strip():
            continue
        location = f"line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ImportFormatError(
                name, location, f"JSON 格式错误：{err.msg}", f"invalid JSON: {err.msg}"
            ) from None
        if not isinstance(record, dict):
            raise ImportFormatError(
                name, location, "每行必须是一个 JSON 对象", "each line must be a JSON object"
            )
        faqs.append(_make_faq(name, location, record))
    return faqs
