"""Rule-based Chinese entity extractors: ``X(**settings).extract(doc, now) -> list[Entity]``.

Each matches on ``doc.text`` (normalised) and reports offsets into ``doc.original``. ``EXTRACTORS`` maps pipeline
component names to classes; the plain validators are for the dialogue's form validators.
"""

from nlu.extractors.chinese_time import ChineseTimeExtractor, find_times
from nlu.extractors.idcard import IdCardExtractor, IdCheck, mask_id, validate_id_number
from nlu.extractors.lookup import LookupEntityExtractor
from nlu.extractors.numbers import ChineseNumberExtractor
from nlu.extractors.overlaps import resolve_overlaps
from nlu.extractors.person import PersonNameExtractor
from nlu.extractors.phone import PhoneCheck, PhoneExtractor, mask_phone, validate_phone
from nlu.extractors.regex import RegexEntityExtractor
from nlu.extractors.synonyms import EntitySynonymMapper

EXTRACTORS: dict[str, type] = {
    cls.name: cls
    for cls in (
        IdCardExtractor,
        PhoneExtractor,
        ChineseTimeExtractor,
        ChineseNumberExtractor,
        PersonNameExtractor,
        RegexEntityExtractor,
        LookupEntityExtractor,
        EntitySynonymMapper,
    )
}

__all__ = [
    "EXTRACTORS",
    "ChineseNumberExtractor",
    "ChineseTimeExtractor",
    "EntitySynonymMapper",
    "IdCardExtractor",
    "IdCheck",
    "LookupEntityExtractor",
    "PersonNameExtractor",
    "PhoneCheck",
    "PhoneExtractor",
    "RegexEntityExtractor",
    "find_times",
    "mask_id",
    "mask_phone",
    "resolve_overlaps",
    "validate_id_number",
    "validate_phone",
]
