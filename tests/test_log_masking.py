"""The logging filter that masks ID and phone numbers: texts, records, exceptions, uvicorn's own loggers."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from assistant.log_masking import WITHHELD, PersonalDataFilter, install, mask_text, with_personal_data_filter

ID18 = "110101199003077571"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"身份证{ID18}的", "身份证1101**********7571的"),
        ("id 11010119900307757x", "id 1101**********757X"),
        ("ID 1101 0119 9003 0775 71 ok", "ID 1101**********7571 ok"),
        ("１１０１０１１９９００３０７７５７１", "1101**********7571"),
        ("旧证110101900307757", "旧证1101*******7757"),
        ("手机13912345678谢谢", "手机139****5678谢谢"),
        ("call +86 139 1234 5678", "call 139****5678"),
        ("tel 139-1234-5678.", "tel 139****5678."),
        ("+8613912345678", "139****5678"),
        ("１３９１２３４５６７８", "139****5678"),
        ("电话010-12345678", "电话010-****5678"),
        ("座机 (010) 1234 5678", "座机 010-****5678"),
        ("0755-8888 6666", "0755-****6666"),
    ],
)
def test_mask_text_masks_ids_and_phones(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    ["GET /healthz 200", "热线12345", "2026-11-27 21:03:07,123", "trace 1234567890123", "ts=1732741387123", ""],
)
def test_mask_text_leaves_other_numbers(text: str) -> None:
    assert mask_text(text) == text


def _record(msg: object, args: object = None, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]


def test_filter_formats_then_masks_and_keeps_the_line() -> None:
    record = _record("citizen %s said %r", ("c1", f"我的身份证是{ID18}，电话13912345678"))
    assert PersonalDataFilter().filter(record) is True
    message = record.getMessage()
    assert ID18 not in message and "13912345678" not in message
    assert "1101**********7571" in message and "139****5678" in message and message.startswith("citizen c1 said")


def test_filter_masks_non_string_args_by_formatting_them() -> None:
    record = _record("phone %d, ids %s", (13912345678, [ID18]))
    PersonalDataFilter().filter(record)
    assert record.args is None
    assert record.getMessage() == "phone 139****5678, ids ['1101**********7571']"


def test_filter_keeps_args_when_masking_them_is_enough() -> None:
    # uvicorn's access formatter unpacks record.args: they must stay a tuple of the same shape
    record = _record('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", "/x?phone=13912345678", "1.1", 200))
    PersonalDataFilter().filter(record)
    assert record.args == ("127.0.0.1:5", "GET", "/x?phone=139****5678", "1.1", 200)


def test_filter_masks_mapping_args() -> None:
    record = _record("%(who)s: %(phone)s", ({"who": "张三", "phone": "13912345678"},))
    PersonalDataFilter().filter(record)
    assert record.getMessage() == "张三: 139****5678"


def test_filter_masks_exception_text() -> None:
    try:
        raise ValueError(f"bad slot value {ID18} / 13912345678")
    except ValueError as err:
        record = _record("action failed", None, (type(err), err, err.__traceback__))
    PersonalDataFilter().filter(record)
    out = logging.Formatter().format(record)
    assert "ValueError: bad slot value 1101**********7571 / 139****5678" in out
    assert ID18 not in out and "13912345678" not in out


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")


def test_filter_never_raises_on_odd_records() -> None:
    f = PersonalDataFilter()
    odd = [
        _record("%s %s", ("only one",)),  # bad format: the handler reports it, the filter lets it through
        _record(_Unprintable()),
        _record(None),
        _record(b"bytes 13912345678"),
        _record("%d", ("not a number",)),
    ]
    for record in odd:
        assert f.filter(record) is True
    assert odd[1].msg == WITHHELD  # could not be read, so could not be checked: withheld, not lost


def test_filter_is_idempotent_on_several_handlers() -> None:
    record = _record("phone %s", ("13912345678",))
    f = PersonalDataFilter()
    f.filter(record)
    f.filter(record)
    assert record.getMessage() == "phone 139****5678"


@pytest.fixture()
def scratch_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    name = "test_log_masking.scratch"
    stream = io.StringIO()
    logger = logging.getLogger(name)
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_install_covers_named_loggers_handlers_once(scratch_logger: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = scratch_logger
    install((logger.name,))
    install((logger.name,))
    assert sum(isinstance(f, PersonalDataFilter) for f in logger.handlers[0].filters) == 1
    logger.debug("child %s", "13912345678")
    logging.getLogger(logger.name + ".child").warning("id %s", ID18)  # propagates to the handler: still masked
    assert stream.getvalue().splitlines() == ["child 139****5678", "id 1101**********7571"]


def test_uvicorn_loggers_mask_with_the_filtered_config() -> None:
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: list(logging.getLogger(n).handlers) for n in names}
    try:
        # uvicorn.Config applies log_config when built, as uvicorn.run does
        uvicorn.Config(lambda: None, log_config=with_personal_data_filter(LOGGING_CONFIG), log_level="info")
        streams = {}
        for name in ("uvicorn", "uvicorn.access"):
            (handler,) = logging.getLogger(name).handlers
            assert any(isinstance(f, PersonalDataFilter) for f in handler.filters)
            streams[name] = io.StringIO()
            handler.setStream(streams[name])  # type: ignore[attr-defined]
        access = ("127.0.0.1:5", "GET", "/api?phone=13912345678", "1.1", 200)
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', *access)
        logging.getLogger("uvicorn.error").error("client sent %s", ID18)
        assert '"GET /api?phone=139****5678 HTTP/1.1" 200' in streams["uvicorn.access"].getvalue()
        assert "client sent 1101**********7571" in streams["uvicorn"].getvalue()
    finally:
        for name, handlers in saved.items():
            logging.getLogger(name).handlers[:] = handlers
    assert "filters" not in LOGGING_CONFIG["handlers"]["access"]  # the copy was changed, not uvicorn's default
