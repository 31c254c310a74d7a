"""Chunking Chinese documents: Markdown sections, then sentences, packed up to a character budget.

A chunk never cuts inside a sentence unless that one sentence is longer than the budget (then it is cut at a
comma, or hard as a last resort). Each chunk's text starts with ``标题 / 章节`` so a chunk matched on its own
still says what it is about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# a sentence ends after 。！？； (or ASCII !?;) and any closing quotes/brackets that follow
_SENTENCE_END = re.compile(r"[。！？；!?;…]+[”’」』）)\]]*")
_SOFT_BREAK = re.compile(r"[，、,：:]")


@dataclass(frozen=True)
class Section:
    heading: str | None  # heading path joined with " / ", None for text before the first heading
    text: str


@dataclass(frozen=True)
class ChunkDraft:
    seq: int
    section: str | None
    text: str  # header line + body, what is embedded
    body: str  # the chunk's own sentences, without the header


def split_sections(title: str, body: str) -> list[Section]:
    """Split Markdown by ``#``..``######`` headings; nested headings form a path (``申请条件 / 材料``).
    A top heading equal to the document title is not repeated as a section."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip()
        if text:
            names = [name for _, name in path]
            sections.append(Section(" / ".join(names) if names else None, text))
        lines.clear()

    in_code = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        m = None if in_code else _HEADING.match(line.strip())
        if m is None:
            lines.append(line)
            continue
        flush()
        level, name = len(m.group(1)), m.group(2).strip()
        path = [(lvl, n) for lvl, n in path if lvl < level]
        if not (level == 1 and name == title.strip() and not path):
            path.append((level, name))
    flush()
    return sections


def split_sentences(text: str) -> list[str]:
    """Sentences end at 。！？； (full-width or ASCII) and at line breaks; empty pieces are dropped."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        pos = 0
        for m in _SENTENCE_END.finditer(line):
            piece = line[pos : m.end()].strip()
            if piece:
                out.append(piece)
            pos = m.end()
        rest = line[pos:].strip()
        if rest:
            out.append(rest)
    return out


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """A sentence longer than the budget: cut after commas where possible, hard otherwise."""
    parts: list[str] = []
    current = ""
    pos = 0
    pieces = []
    for m in _SOFT_BREAK.finditer(sentence):
        pieces.append(sentence[pos : m.end()])
        pos = m.end()
    pieces.append(sentence[pos:])
    for piece in pieces:
        while len(piece) > max_chars:
            if current:
                parts.append(current)
                current = ""
            parts.append(piece[:max_chars])
            piece = piece[max_chars:]
        if len(current) + len(piece) > max_chars:
            parts.append(current)
            current = ""
        current += piece
    if current:
        parts.append(current)
    return [p for p in parts if p]


def pack_sentences(sentences: list[str], max_chars: int, overlap: int) -> list[list[str]]:
    """Greedy packing; each new chunk starts with up to ``overlap`` trailing sentences of the previous one,
    as long as they leave room for at least one new sentence."""
    units: list[str] = []
    for s in sentences:
        units.extend(_split_long(s, max_chars) if len(s) > max_chars else [s])
    chunks: list[list[str]] = []
    current: list[str] = []
    fresh = 0  # sentences in ``current`` that are not overlap
    for unit in units:
        if current and sum(map(len, current)) + len(unit) > max_chars:
            if fresh:
                chunks.append(current)
            carried = current[-overlap:] if overlap > 0 and fresh else []
            while carried and sum(map(len, carried)) + len(unit) > max_chars:
                carried = carried[1:]
            current, fresh = list(carried), 0
        current.append(unit)
        fresh += 1
    if current and fresh:
        chunks.append(current)
    return chunks


def _joiner(sentences: list[str]) -> str:
    # Chinese sentences join without spaces; Latin ones need one
    out = ""
    for s in sentences:
        if out and out[-1].isascii() and out[-1].isalnum() and s[:1].isascii():
            out += " "
        out += s
    return out


def chunk_document(title: str, body: str, max_chars: int = 300, overlap: int = 1) -> list[ChunkDraft]:
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20 / 分块长度至少为 20 个字符")
    drafts: list[ChunkDraft] = []
    for section in split_sections(title, body):
        header = f"{title} / {section.heading}" if section.heading else title
        for group in pack_sentences(split_sentences(section.text), max_chars, overlap):
            text_body = _joiner(group)
            drafts.append(ChunkDraft(len(drafts), section.heading, f"{header}\n{text_body}", text_body))
    return drafts
