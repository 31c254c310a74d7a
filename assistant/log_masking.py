"""Masks ID numbers and phone numbers in log records: ``1101**********1234``, ``139****5678``, ``010-****5678``.

``PersonalDataFilter`` sits on handlers (a filter on a logger does not see records its children propagate), formats
each record, and rewrites it when the text holds personal data. It reuses the NLU's span finders, so a log line is
masked exactly where the assistant would have recognised an ID card or a phone number in a citizen's message.

Names, addresses and other form values cannot be recognised by pattern: our code never logs message texts or slot
values (conversation ids, action names and error codes only). Libraries that dump whole payloads at DEBUG — the
``websockets`` frames uvicorn logs (``< TEXT '{"message": ...}'``), rasa-sdk's "Contents of ignored event" — have
the payload withheld here, keeping the line's kind and size.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from nlu.extractors import mask_id, mask_phone
from nlu.extractors.idcard import find_id_spans
from nlu.extractors.phone import find_phone_spans

# uvicorn's loggers do not propagate to the root logger: their handlers need the filter too
DEFAULT_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
FILTER_NAME = "personal_data"
WITHHELD = "[log message withheld: personal data masking failed / 日志含个人信息，已隐藏]"

# The span finders expect normalised text; this folding is one character to one character, so their offsets are
# offsets into the original line. Full-width digits and separators are what citizens type on Chinese keyboards.
_FOLD = {ord("０") + i: ord("0") + i for i in range(10)} | {
    ord("X"): "x",
    ord("Ｘ"): "x",
    ord("ｘ"): "x",
    ord("\u3000"): " ",
    ord("－"): "-",
    ord("＋"): "+",
    ord("（"): "(",
    ord("）"): ")",
}
# every ID or phone number has a run of at least seven digits (single separators allowed): most log lines have none,
# and this one scan is all they cost
_PRECHECK = re.compile(r"[0-9０-９](?:[ \u3000\-－]?[0-9０-９]){6}")


def mask_text(text: str) -> str:
    """``text`` with every ID number and phone number masked; ``text`` itself when it has none."""
    if not _PRECHECK.search(text):
        return text
    folded = text.translate(_FOLD)
    spans = [(s, e, mask_id) for s, e in find_id_spans(folded)]
    taken = [(s, e) for s, e, _ in spans]
    for s, e in find_phone_spans(folded):
        # an ID number's digits may look like a phone number too: the ID wins
        if not any(s < te and ts < e for ts, te in taken):
            spans.append((s, e, mask_phone))
            taken.append((s, e))
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for s, e, mask in sorted(spans, key=lambda t: t[0]):
        out += [text[pos:s], mask(folded[s:e])]
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _mask_args(args: Any) -> Any:
    if isinstance(args, Mapping):
        return {k: mask_text(v) if isinstance(v, str) else v for k, v in args.items()}
    return tuple(mask_text(a) if isinstance(a, str) else a for a in args)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the handler's error to report, not ours
        return str(record.msg)


class PersonalDataFilter(logging.Filter):
    """Rewrites records holding ID or phone numbers; never drops a record and never raises."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            _mask_record(record)
        except Exception:  # noqa: BLE001 - a raising filter loses the line; better a line without its text
            record.msg, record.args = WITHHELD, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def _is_frame(value: Any) -> bool:
    """A ``websockets`` frame (not imported: the filter must not depend on the server's WebSocket library)."""
    return type(value).__module__.startswith("websockets") and hasattr(value, "opcode") and hasattr(value, "data")


def _frame_summary(frame: Any) -> str:
    opcode = getattr(frame.opcode, "name", str(frame.opcode))
    return f"{opcode} [payload withheld, {len(frame.data)} bytes]"


_IGNORED_EVENT = "Contents of ignored event"


def _withhold_payload_dumps(record: logging.LogRecord) -> None:
    """Replace the payload of the library DEBUG lines known to dump messages or events whole."""
    if isinstance(record.args, tuple) and any(_is_frame(a) for a in record.args):
        record.args = tuple(_frame_summary(a) if _is_frame(a) else a for a in record.args)
    elif record.name.startswith("rasa_sdk") and isinstance(record.msg, str) and record.msg.startswith(_IGNORED_EVENT):
        record.msg, record.args = f"{_IGNORED_EVENT}: [withheld]", None


def _mask_record(record: logging.LogRecord) -> None:
    _withhold_payload_dumps(record)
    message = _message(record)
    masked = mask_text(message)
    if masked != message:
        record.msg, record.args = _masked_msg_args(record, masked)
    if record.exc_info and not record.exc_text:
        # formatters use exc_text when it is set, so masking it here masks the traceback every handler prints
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)


def _masked_msg_args(record: logging.LogRecord, masked: str) -> tuple[Any, Any]:
    """Masked arguments when they carry all the personal data, since some formatters read ``record.args``
    (uvicorn's access formatter unpacks them); otherwise the masked message with no arguments."""
    if record.args:
        msg = mask_text(record.msg) if isinstance(record.msg, str) else record.msg
        args = _mask_args(record.args)
        try:
            again = str(msg) % args
        except Exception:  # noqa: BLE001 - masking changed a value's shape: fall back to the formatted message
            return masked, None
        if mask_text(again) == again:
            return msg, args
    return masked, None


def install(
    logger_names: Iterable[str] = DEFAULT_LOGGERS, personal_filter: PersonalDataFilter | None = None
) -> PersonalDataFilter:
    """Add the filter to the handlers of the root logger and of ``logger_names`` (once per handler)."""
    personal_filter = personal_filter or PersonalDataFilter()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logger_names)]
    for handler in {id(h): h for lg in loggers for h in lg.handlers}.values():
        if not any(isinstance(f, PersonalDataFilter) for f in handler.filters):
            handler.addFilter(personal_filter)
    return personal_filter


def with_personal_data_filter(log_config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a ``logging.config.dictConfig`` mapping (uvicorn's ``LOGGING_CONFIG``) whose every handler masks."""
    config = copy.deepcopy(dict(log_config))
    config.setdefault("filters", {})[FILTER_NAME] = {"()": PersonalDataFilter}
    for handler in config.get("handlers", {}).values():
        names = list(handler.get("filters", []))
        handler["filters"] = names if FILTER_NAME in names else [*names, FILTER_NAME]
    return config
