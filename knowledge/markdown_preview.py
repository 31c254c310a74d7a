"""Markdown to HTML for the editor's preview, safe to insert into the editor page.

Raw HTML in the source is never passed through (markdown-it's ``html`` option is off, so ``<script>`` comes out
as text), and markdown-it's link validation drops ``javascript:``, ``vbscript:``, ``file:`` and non-image
``data:`` URLs. What remains is markdown-it's own, escaped output: an editor cannot inject script into a
colleague's page by writing it into a document.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt

MAX_PREVIEW_CHARS = 200_000


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    # CommonMark plus the GFM tables and strikethrough that policy documents use; no raw HTML, no typographer
    # (it would rewrite Chinese quotation marks)
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def render_preview(markdown: str) -> str:
    """Sanitized HTML of ``markdown`` (at most ``MAX_PREVIEW_CHARS`` characters are rendered)."""
    return _renderer().render(markdown[:MAX_PREVIEW_CHARS])
