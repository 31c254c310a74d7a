"""Inbound message de-duplication survives restarts, and a failed message can be taken again."""

from __future__ import annotations

from pathlib import Path

from connectors.dedupe import SqlDeduplicator


def test_claim_once_across_instances_and_release_after_failure(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'seen.db'}"
    first = SqlDeduplicator(url)
    assert first.claim("wx:msg:1")
    assert not first.claim("wx:msg:1")
    assert not SqlDeduplicator(url).claim("wx:msg:1")  # a restarted process remembers it
    first.release("wx:msg:1")  # processing failed: WeChat's retry must be handled, not ignored
    assert SqlDeduplicator(url).claim("wx:msg:1")
