"""Turning the engine's replies into the JSON shapes channels speak."""

from __future__ import annotations

from typing import Any


def reply_to_rasa(recipient_id: str, reply: Any) -> dict[str, Any]:
    """Rasa REST channel's message dict: text | image | buttons | custom."""
    out: dict[str, Any] = {"recipient_id": recipient_id}
    if reply.text:
        out["text"] = reply.text
    if reply.buttons:
        out["buttons"] = [{"title": b.title, "payload": b.payload} for b in reply.buttons]
    if reply.image:
        out["image"] = reply.image
    custom = dict(reply.custom or {})
    if reply.citations:
        custom["citations"] = list(reply.citations)
    if custom:
        out["custom"] = custom
    return out


def reply_to_webchat(reply: Any) -> dict[str, Any]:
    return {
        "role": "bot",
        "text": reply.text or "",
        "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
        "citations": list(reply.citations),
        "image": reply.image,
        "custom": reply.custom,
    }
