"""The import's fast paths give exactly what the general ones give (amounts in fen, dedupe keys)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from siyu_ingest.domain import imports as rules
from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.normalise import yuan_to_fen


def _decimal_fen(raw: str) -> int:
    """The general rule (the only one before the fast path): Decimal × 100 rounded half up at the fen."""
    try:
        amount = Decimal(str(raw)) * 100
    except InvalidOperation as exc:
        raise Malformed(f"amount {raw!r} is not a number") from exc
    if not amount.is_finite() or amount < 0:
        raise Malformed(f"amount {raw!r} is not a non-negative amount")
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _outcome(rule: Callable[[str], int], raw: str) -> object:
    try:
        return rule(raw)
    except Exception as exc:
        return type(exc)


plain_amounts = st.from_regex(r"\A[0-9]{1,15}(\.[0-9]{1,2})?\Z")
amount_like = st.text(alphabet="0123456789.-+ eE٣５", max_size=12)


@given(st.one_of(plain_amounts, amount_like))
def test_yuan_to_fen_fast_path_matches_decimal(raw: str) -> None:
    if raw == "":
        return
    assert _outcome(yuan_to_fen, raw) == _outcome(_decimal_fen, raw)


records = st.fixed_dictionaries(
    {
        "type": st.just("order"),
        "channel": st.text(max_size=8),
        "order_no": st.text(max_size=20),
        "identifiers": st.lists(st.lists(st.text(max_size=10), min_size=2, max_size=2), max_size=3),
        "amount_fen": st.integers(min_value=0, max_value=10**12),
        "paid_at": st.none() | st.text(max_size=25),
        "status": st.text(max_size=6),
        "shop_id": st.none() | st.text(max_size=6),
    }
)


@given(records)
def test_dedupe_key_is_the_canonical_json_digest(record: dict[str, Any]) -> None:
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode()
    digest = hashlib.sha256(canonical).hexdigest()[:16]
    assert rules.dedupe_key(record) == f"order:{record['channel']}:{str(record['order_no'])[:150]}:{digest}"
