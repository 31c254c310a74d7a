"""Markdown documents with an optional YAML front matter block."""

from __future__ import annotations

import re
from pathlib import PurePath

import yaml

from knowledge.importers.fields import parse_date, split_list
from knowledge.importers.types import ImportFormatError, ParsedDocument

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.M)
KNOWN_KEYS = {"title", "department", "service_item", "source_url", "effective_date", "expiry_date", "tags"}


def decode_text(data: bytes, name: str) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFormatError(
        name,
        None,
        "无法识别文本编码（应为 UTF-8 或 GB18030）",
        "unknown text encoding (expected UTF-8 or GB18030)",
    )


def parse_markdown(name: str, data: bytes) -> ParsedDocument:
    text = decode_text(data, name).replace("\r\n", "\n")
    meta: dict[str, object] = {}
    m = _FRONT_MATTER.match(text)
    if m:
        try:
            loaded = yaml.safe_load(m.group(1))
        except yaml.YAMLError as err:
            raise ImportFormatError(
                name, "front matter", f"YAML 格式错误：{err}", f"invalid YAML: {err}"
            ) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ImportFormatError(
                name, "front matter", "元数据必须是键值映射", "front matter must be a mapping"
            )
        meta = loaded or {}
        unknown = sorted(set(map(str, meta)) - KNOWN_KEYS)
        if unknown:
            raise ImportFormatError(
                name, "front matter", f"未知字段：{', '.join(unknown)}", f"unknown keys: {', '.join(unknown)}"
            )
        text = text[m.end() :]
    body = text.strip()
    title = str(meta.get("title") or "").strip()
    if not title:
        h1 = _H1.search(body)
        title = h1.group(1).strip() if h1 else PurePath(name).stem
    if not body:
        raise ImportFormatError(name, None, "文档正文为空", "the document body is empty")
    loc = "front matter"
    return ParsedDocument(
        title=title,
        body=body,
        source_key=PurePath(name).name,
        department=_opt(meta.get("department")),
        service_item=_opt(meta.get("service_item")),
        source_url=_opt(meta.get("source_url")),
        effective_date=parse_date(meta.get("effective_date"), name, loc, "effective_date"),
        expiry_date=parse_date(meta.get("expiry_date"), name, loc, "expiry_date"),
        tags=split_list(meta.get("tags")),
    )


def _opt(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None
