"""structlog JSON logging that never prints phone numbers or names in clear.

Two guards: values under personal-data keys are replaced whole, and any string that still contains something
shaped like a phone number (mainland mobile or E.164) is masked, so free text (a Douyin DM) cannot leak one.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

PII_KEYS = frozenset(
    {
        "phone",
        "mobile",
        "telephone",
        "telphone",
        "phone_e164",
        "remark_mobiles",
        "name",
        "nick_name",
        "nickname",
        "buyer_nick",
        "real_name",
        "receiver_name",
        "address",
        "email",
        "weixin",
        "qq",
        "text",
    }
)
REDACTED = "[redacted]"
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)|\+\d{8,15}(?!\d)")


def mask_phones(text: str) -> str:
    return _PHONE.sub("[phone]", text)


def scrub(value: Any, *, depth: int = 0) -> Any:
    """A copy of a log value with personal data removed (bounded depth, so a cycle cannot hang logging)."""
    if depth > 6:
        return "…"
    if isinstance(value, str):
        return mask_phones(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in PII_KEYS else scrub(v, depth=depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v, depth=depth + 1) for v in value]
    return value


def redact_pii(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: scrub every field of the log line."""
    return {key: (REDACTED if key.lower() in PII_KEYS else scrub(value)) for key, value in event_dict.items()}


def _orjson_dumps(obj: Any, default: Any = None) -> str:
    return orjson.dumps(obj, default=default or str).decode()


def configure_logging(*, service: str, level: str = "INFO", json: bool = True) -> None:
    """Route structlog and the standard library (uvicorn, aiokafka, sqlalchemy) through one scrubbed pipeline."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_pii,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
