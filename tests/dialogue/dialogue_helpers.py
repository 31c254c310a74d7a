"""Event builders shared by the dialogue tests (a unique module name: other test folders have conftests)."""

from __future__ import annotations

from typing import Any

from assistant.events import ActionExecuted, UserUttered


def user(
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    text: str = "",
    confidence: float = 0.95,
    ranking: list[tuple[str, float]] | None = None,
) -> list[Any]:
    """The events of one user turn as the agent writes them: listen, then the message."""
    parse = {
        "text": text or intent,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
        "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])],
    }
    return [ActionExecuted("action_listen"), UserUttered(text or intent, parse)]
