"""Validation names the step at fault."""

from __future__ import annotations

from typing import Any

from siyu_journey.api.schemas import GREETING_EXAMPLE, JourneyOut
from siyu_journey.domain.definition import parse_definition
from siyu_journey.domain.validation import validate


def problems(steps: list[dict[str, Any]], **extra: Any) -> list[str]:
    definition = parse_definition(
        {
            "id": "j",
            "name": "t",
            "trigger": {"event": "contact.added"},
            "steps": steps,
            "templates": {"hi": "hi"},
            **extra,
        }
    )
    return [str(p) for p in validate(definition, known_tags={"vip"})]


def test_a_good_journey_has_no_problems() -> None:
    assert problems([{"id": "s", "kind": "send", "template": "hi"}, {"id": "w", "kind": "wait", "seconds": 60}]) == []


def test_loop_without_wait_is_rejected_naming_the_step() -> None:
    found = problems([{"id": "s", "kind": "send", "template": "hi"}, {"id": "again", "kind": "goto", "target": "s"}])
    assert any("'s'" in p and "loop without a wait" in p for p in found), found


def test_loop_through_a_wait_is_fine() -> None:
    steps = [
        {"id": "s", "kind": "send", "template": "hi"},
        {"id": "w", "kind": "wait", "seconds": 3600},
        {"id": "again", "kind": "goto", "target": "s"},
    ]
    assert problems(steps) == []


def test_unknown_template_tag_and_step() -> None:
    found = problems(
        [
            {"id": "b", "kind": "branch", "condition": {"has_tag": "nope"}, "then": "missing"},
            {"id": "s", "kind": "send", "template": "bye"},
        ]
    )
    assert "step 'b': goes to unknown step 'missing'" in found
    assert "step 'b': unknown tag 'nope'" in found
    assert "step 's': unknown template 'bye'" in found


def test_unreachable_steps_are_named() -> None:
    found = problems([{"id": "end", "kind": "exit"}, {"id": "orphan", "kind": "send", "template": "hi"}])
    assert found == ["step 'orphan': unreachable from the first step"]


def test_template_syntax_errors() -> None:
    found = problems([{"id": "s", "kind": "send", "template": "hi"}], templates={"hi": "{{ oops"})
    assert found and "template 'hi' does not parse" in found[0]


def test_every_shipped_example_journey_is_valid() -> None:
    from siyu_journey.examples import example_names, load_example

    names = example_names()
    assert {"greeting", "relationship", "skin_advice", "first_order_coupon", "group_invite"} <= set(names)
    assert {"red_packet_reengage", "weekly_new_product", "double11_promotion"} <= set(names)
    for name in names:
        assert validate(load_example(name)) == [], name


def test_the_api_examples_are_valid_journeys() -> None:
    """OpenAPI types a definition as any object: that its examples are good journeys is checked here."""
    for example in [GREETING_EXAMPLE, *(e["definition"] for e in JourneyOut.model_json_schema()["examples"])]:
        assert [str(p) for p in validate(parse_definition(example))] == []
