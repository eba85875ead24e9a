"""The WeCom friendship changes as a pair (owner, external_userid): plain data, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from siyu_journey.domain.people import (
    Friendship,
    Person,
    after_added,
    after_merge,
    after_removed,
    fold,
    friendship,
)

ONE = Friendship("staff-1", "wm_a")
TWO = Friendship("staff-2", "wm_a")


def test_a_friendship_needs_both_owner_and_external_userid() -> None:
    assert friendship("staff-1", "wm_a") == ONE
    assert friendship("staff-1", None) is None
    assert friendship(None, "wm_a") is None
    assert friendship(None, None) is None


def test_the_first_adder_owns_the_relationship_while_it_lasts() -> None:
    assert after_added(None, ONE) == ONE
    assert after_added(ONE, TWO) == ONE


def test_the_owner_losing_the_person_ends_the_friendship_another_account_changes_nothing() -> None:
    assert after_removed(ONE, "staff-2") == ONE
    assert after_removed(ONE, "staff-1") is None
    assert after_removed(None, "staff-2") is None


def test_owner_removes_another_account_adds_again_and_then_removes() -> None:
    state = after_removed(ONE, "staff-1")
    state = after_added(state, TWO)
    assert state == TWO  # the next 1v1 goes out from staff-2
    assert after_removed(state, "staff-2") is None


def test_a_merge_keeps_the_survivors_pair_else_the_merged_persons() -> None:
    assert after_merge(ONE, TWO) == ONE
    assert after_merge(None, TWO) == TWO
    assert after_merge(None, None) is None


def test_a_merge_folds_every_merged_person_into_the_survivor() -> None:
    paid = datetime(2026, 11, 20, tzinfo=UTC)
    survivor = Person(tags=frozenset({"vip"}), facts={"skin": "dry"}, paid_total_fen=100)
    first = Person(
        tags=frozenset({"a"}), facts={"skin": "oily", "city": "杭州"}, paid_total_fen=9900, last_paid_at=paid
    )
    second = Person(
        tags=frozenset({"b"}),
        facts={"city": "上海", "age": "30"},
        opted_out=True,
        paid_total_fen=5000,
        last_paid_at=paid + timedelta(days=1),
        friendship=TWO,
    )
    assert fold(survivor, [first, second]) == Person(
        tags=frozenset({"vip", "a", "b"}),
        facts={"skin": "dry", "city": "杭州", "age": "30"},
        opted_out=True,
        paid_total_fen=15000,
        last_paid_at=paid + timedelta(days=1),
        friendship=TWO,
    )
    assert fold(survivor, []) == survivor
    assert fold(Person(friendship=ONE), [Person(friendship=TWO)]).friendship == ONE
    assert fold(Person(), [Person(), Person(friendship=TWO), Person(friendship=ONE)]).friendship == TWO
