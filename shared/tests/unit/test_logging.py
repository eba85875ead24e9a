import io
import logging

import orjson

from siyu_shared.logging import configure_logging, get_logger, mask_phones, scrub


def test_phone_numbers_are_masked_in_free_text() -> None:
    assert "13800000000" not in mask_phones("电话13800000000 请回电")
    assert "+8613912345678" not in mask_phones("call +8613912345678")
    assert "138 0000 0000" not in mask_phones("138 0000 0000")
    # Order numbers and timestamps are not phones.
    assert mask_phones("tid 3000000000001") == "tid 3000000000001"
    assert mask_phones("1710000000000") == "1710000000000"


def test_personal_keys_are_redacted_at_any_depth() -> None:
    cleaned = scrub({"lead": {"name": "张三", "phone": "13800000000", "city": "上海"}, "items": [{"nick_name": "A"}]})
    assert cleaned == {
        "lead": {"name": "[redacted]", "phone": "[redacted]", "city": "上海"},
        "items": [{"nick_name": "[redacted]"}],
    }


def test_configured_logger_never_prints_personal_data(capsys: object) -> None:
    stream = io.StringIO()
    configure_logging(service="test", level="INFO", json=True)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    get_logger("t").info("lead_received", phone="13800000000", text="我的电话是13912345678", tenant="glowlab")
    logging.getLogger("uvicorn.error").warning("stdlib says 13700000000")
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    dumped = stream.getvalue()
    for phone in ("13800000000", "13912345678", "13700000000"):
        assert phone not in dumped
    assert lines[0]["tenant"] == "glowlab"
    assert lines[0]["service"] == "test"
    assert lines[0]["event"] == "lead_received"
