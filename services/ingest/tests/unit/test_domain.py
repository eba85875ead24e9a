"""Domain rules on plain data: normalisation, identity resolution, the order lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from siyu_ingest.domain import orders
from siyu_ingest.domain.errors import Malformed
from siyu_ingest.domain.identity import KnownPerson, lookup_identifier, resolve
from siyu_ingest.domain.models import Identifier, OrderChange
from siyu_ingest.domain.normalise import (
    clean_name,
    epoch_time,
    normalise_phone,
    phones_in_text,
    shanghai_time,
    yuan_to_fen,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "e164", "partial"),
    [
        ("13800138000", "+8613800138000", None),
        ("+86 138-0013-8000", "+8613800138000", None),
        ("１３８００１３８０００", "+8613800138000", None),  # full-width digits
        ("138****0000", None, "138****0000"),
        ("138xxxx0000", None, "138xxxx0000"),
        ("12345", None, "12345"),
        ("", None, None),
    ],
)
def test_phones_are_e164_or_kept_partial(raw: str, e164: str | None, partial: str | None) -> None:
    phone = normalise_phone(raw)
    if e164 is None and partial is None:
        assert phone is None or phone.e164 is None
    else:
        assert phone is not None
        assert (phone.e164, phone.partial) == (e164, partial)


def test_phones_inside_free_text() -> None:
    assert phones_in_text("电话13800000000，或者 139 1234 5678") == ["+8613800000000", "+8613912345678"]
    assert phones_in_text("没有号码 138****0000") == []


def test_money_times_and_names() -> None:
    assert yuan_to_fen("99.00") == 9900
    assert yuan_to_fen("0.015") == 2
    assert yuan_to_fen(None) == 0
    with pytest.raises(Malformed):
        yuan_to_fen("abc")
    with pytest.raises(Malformed):
        yuan_to_fen("-1")
    assert shanghai_time("2024-01-01 12:00:00") == datetime(2024, 1, 1, 4, tzinfo=UTC)
    assert epoch_time(1710000000000) == epoch_time(1710000000) == datetime.fromtimestamp(1710000000, UTC)
    assert clean_name("  张　三 ") == "张 三"
    assert clean_name("ＡＢＣ") == "ABC"


P = Identifier("phone", "+8613800138000")
E = Identifier("wecom_external_userid", "wmE")
OUID = Identifier("taobao_ouid", "AAH")


def test_unknown_identifiers_make_a_new_person() -> None:
    decision = resolve(observed=[P, E], owners={}, new_person_id="new")
    assert (decision.person_id, decision.create, decision.attach, decision.merged_ids) == ("new", True, (P, E), ())


def test_a_known_identifier_attaches_the_rest_without_merge() -> None:
    decision = resolve(observed=[P, OUID], owners={P: KnownPerson("a", T0)}, new_person_id="new")
    assert (decision.person_id, decision.create, decision.attach, decision.merged_ids) == ("a", False, (OUID,), ())


def test_two_persons_merge_into_the_oldest_whatever_the_order_seen() -> None:
    older, younger = KnownPerson("zzz", T0), KnownPerson("aaa", T0 + timedelta(seconds=1))
    for observed in ([P, E], [E, P]):
        decision = resolve(observed=observed, owners={P: older, E: younger}, new_person_id="new")
        assert decision.person_id == "zzz"
        assert decision.merged_ids == ("aaa",)
        assert decision.reason == "phone"


def test_a_merge_already_done_is_not_repeated() -> None:
    # After the merge both identifiers point at the survivor: resolving again merges nothing.
    survivor = KnownPerson("a", T0)
    assert resolve(observed=[P, E], owners={P: survivor, E: survivor}, new_person_id="n").merged_ids == ()


def test_ties_in_age_break_on_the_id() -> None:
    decision = resolve(observed=[P, E], owners={P: KnownPerson("b", T0), E: KnownPerson("a", T0)}, new_person_id="n")
    assert (decision.person_id, decision.merged_ids) == ("a", ("b",))


def change(kind: str, *, refund_id: str | None = None, amount: int = 0, minutes: int = 0) -> OrderChange:
    return OrderChange(
        kind=kind,  # type: ignore[arg-type]
        channel="tmall",
        order_no="T1",
        occurred_at=T0 + timedelta(minutes=minutes),
        amount_fen=amount,
        refund_id=refund_id,
    )


def run(*changes: OrderChange) -> list[tuple[str, int, bool]]:
    state = orders.OrderState(order_id="tmall:T1")
    out: list[tuple[str, int, bool]] = []
    for c in changes:
        state, emitted = orders.apply(state, c)
        out += [(e.change.kind, e.refund_fen, e.full_refund) for e in emitted]
    return out


def test_in_order_lifecycle() -> None:
    assert run(change("paid", amount=1000), change("completed"), change("closed")) == [
        ("paid", 0, False),
        ("completed", 0, False),
        ("closed", 0, False),
    ]


def test_refund_before_payment_is_held_and_released_after_it() -> None:
    assert run(change("refunded", refund_id="r", amount=1000, minutes=5), change("paid", amount=1000)) == [
        ("paid", 0, False),
        ("refunded", 1000, True),
    ]


def test_held_changes_come_out_in_lifecycle_order() -> None:
    emitted = run(
        change("closed", minutes=9),
        change("refunded", refund_id="r1", amount=300, minutes=3),
        change("refunded", refund_id="r2", amount=700, minutes=4),
        change("paid", amount=1000),
    )
    assert emitted == [("paid", 0, False), ("refunded", 300, False), ("refunded", 700, True), ("closed", 0, False)]


def test_duplicates_emit_nothing_and_refunds_never_exceed_the_payment() -> None:
    assert run(
        change("paid", amount=1000),
        change("paid", amount=1000),
        change("refunded", refund_id="r1", amount=600),
        change("refunded", refund_id="r1", amount=600),
        change("refunded", refund_id="r2", amount=600),
        change("completed"),
        change("completed"),
    ) == [("paid", 0, False), ("refunded", 600, False), ("refunded", 400, True), ("completed", 0, False)]


def test_a_lookup_names_identifiers_as_the_channels_do() -> None:
    assert lookup_identifier("phone", "138-0013-8000") == Identifier("phone", "+8613800138000")
    assert lookup_identifier("wecom_external_userid", " wmLiLei ") == Identifier("wecom_external_userid", "wmLiLei")
    for kind, value in [("phone", "138****8000"), ("phone", "12345"), ("unionid", "  ")]:
        with pytest.raises(Malformed):
            lookup_identifier(kind, value)  # type: ignore[arg-type]
