"""One entity per stretch of text when extractors disagree."""

from __future__ import annotations

from nlu.types import Entity

# More specific first: an ID number beats a phone or number inside it, a phone beats a number, a time or an
# amount beats a bare number. Everything else (lookup, regex, names, CRF) sits between amounts and numbers.
_RANK = {"id_number": 5, "phone": 4, "hotline": 4, "time": 3, "amount": 3, "number": 0}
_DEFAULT_RANK = 1


def resolve_overlaps(entities: list[Entity]) -> list[Entity]:
    """Keep non-overlapping entities: the more specific kind first, then the longer span, then the earlier one.

    Entities of the same name on the same span from different extractors count as overlapping, so a value
    found by both a rule and the CRF is reported once (the first given wins the tie). Output is in text order.
    """
    order = sorted(
        range(len(entities)),
        key=lambda i: (
            -_RANK.get(entities[i].entity, _DEFAULT_RANK),
            -(entities[i].end - entities[i].start),
            entities[i].start,
            i,
        ),
    )
    kept: list[Entity] = []
    for i in order:
        e = entities[i]
        if e.end <= e.start and any(k.start <= e.start < k.end for k in kept):
            continue
        if all(e.end <= k.start or e.start >= k.end for k in kept if k.end > k.start):
            kept.append(e)
    return sorted(kept, key=lambda e: (e.start, e.end))
