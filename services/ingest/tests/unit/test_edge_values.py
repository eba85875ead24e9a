"""What the webhook edge refuses before anything is stored: unstorable payloads (found at any depth, the fast
pre-check never hiding one), challenges that are not 64-bit integers, WeCom timestamps that are not epoch seconds,
and an internal header that selects nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu_ingest import samples
from siyu_ingest.adapters.channels import ADAPTERS
from siyu_ingest.adapters.channels.base import (
    WebhookRequest,
    int64_challenge,
    json_unstorable,
    payload_unstorable,
)
from siyu_ingest.adapters.channels.wecom import WeComAdapter
from siyu_ingest.domain.errors import Malformed
from siyu_shared.values import INT64_MAX, INT64_MIN, NUL

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["a\x00b", "\x00", "\\u0000", "电话\x00"]
)
integers = st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.sampled_from(
    [INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1]
)
documents = st.recursive(
    st.none() | st.booleans() | integers | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(texts, inner, max_size=4)
        # platforms nest JSON in strings (`content`, `data`): so do the documents here, in every encoding
        | st.dictionaries(texts, inner, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))
        | st.dictionaries(texts, inner, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=True))
    ),
    max_leaves=16,
)


def encodings(document: Any) -> list[bytes]:
    """The document as the platforms' encoders write it: escaped to ASCII or not, spaced or compact (orjson, which
    writes the same bytes as the compact form, cannot write integers beyond 64 bits)."""
    return [
        json.dumps(document, ensure_ascii=True).encode(),
        json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode(),
    ]


def holds_unstorable(value: Any) -> bool:
    """The reference: a NUL or an integer beyond int64 anywhere, JSON inside strings included (decoded as the
    parsers decode it: orjson reads integers beyond 64 bits as floats)."""
    if isinstance(value, str):
        if NUL in value:
            return True
        try:
            nested = orjson.loads(value)
        except orjson.JSONDecodeError:
            return False
        return isinstance(nested, dict | list) and holds_unstorable(nested)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return False
    if isinstance(value, int):
        return not INT64_MIN <= value <= INT64_MAX
    if isinstance(value, dict):
        return any(holds_unstorable(k) or holds_unstorable(v) for k, v in value.items())
    return any(holds_unstorable(v) for v in value)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_the_pre_check_never_hides_an_unstorable_value(document: Any) -> None:
    for body in encodings(document):
        decoded = orjson.loads(body)  # orjson reads integers past 2**64 as floats: what the parsers then see
        assert json_unstorable(body) == payload_unstorable(decoded)
        assert (json_unstorable(body) is not None) == holds_unstorable(decoded)


def test_reasons_say_where() -> None:
    body = orjson.dumps({"data": orjson.dumps({"clue": {"name": "x\x00"}}).decode()})
    assert json_unstorable(body) == "$.data(decoded).clue.name contains the NUL character (U+0000)"
    assert json_unstorable(orjson.dumps({"id": 2**63})) == "$.id is an integer beyond 64 bits"
    assert json_unstorable(b"not json at all \\u0000") is None  # the parser says why, with its own reason


@given(st.text(max_size=30) | st.sampled_from(["²", "١٢٣", "9" * 5000, "-0", "007", " 1", "1 ", "+1", "1e3"]))
def test_a_challenge_is_a_64_bit_integer_or_malformed(text: str) -> None:
    try:
        value = int64_challenge(text)
    except Malformed:
        ascii_digits = text.lstrip("-").isascii() and text.lstrip("-").isdigit() and text.count("-") <= 1
        assert not (ascii_digits and text[:1] != "+" and len(text.lstrip("-")) <= 18), text
    else:
        assert str(value) == str(int(text)) and text.isascii() and INT64_MIN <= value <= INT64_MAX


@given(st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() | st.floats() | st.none())
def test_a_json_challenge_must_be_a_64_bit_integer(value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX:
        assert int64_challenge(value) == value
    else:
        with pytest.raises(Malformed):
            int64_challenge(value)


@given(st.text(max_size=20) | st.text("0123456789", max_size=14) | st.sampled_from(["²", "9" * 5000, "9" * 12]))
def test_the_wecom_timestamp_is_epoch_seconds_or_malformed(raw: str) -> None:
    adapter = WeComAdapter()
    try:
        sent = adapter.signed_at(WebhookRequest(body=b"", query={"timestamp": raw}))
    except Malformed:
        assert not (raw.isascii() and raw.isdigit() and len(raw) <= 10)
    else:
        assert sent == datetime.fromtimestamp(int(raw), UTC)


def test_no_header_of_a_caller_selects_how_a_delivery_is_read() -> None:
    """The internal origin header is kept by no adapter (so it is never stored from a caller) and changes nothing:
    a callback carrying it has the callback's own dedupe key and facts."""
    assert all("x-siyu-origin" not in adapter.signature_headers for adapter in ADAPTERS.values())
    body, _, query = samples.wecom(samples.wecom_add_contact(external_userid="wmX"))
    plain = WebhookRequest(body=body, headers={"content-type": "text/xml"}, query=query)
    marked = WebhookRequest(body=body, headers={"content-type": "text/xml", "x-siyu-origin": "wecom-api"}, query=query)
    adapter, creds = ADAPTERS["wecom"], samples.CREDENTIALS["wecom"]
    assert adapter.dedupe_key(marked, creds) == adapter.dedupe_key(plain, creds)
    assert not adapter.dedupe_key(marked, creds).startswith("detail:")
    assert adapter.parse(marked, creds) == adapter.parse(plain, creds)
