"""Chinese text in, structure out. Knows nothing of dialogue, knowledge or channels."""

from nlu.types import Entity, IntentScore, ParseResult

__all__ = ["Entity", "IntentScore", "ParseResult"]
