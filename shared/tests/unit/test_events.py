from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from siyu_shared.events.catalog import OrderLine, OrderPaid, SourceRef
from siyu_shared.events.envelope import CloudEvent, deterministic_event_id
from siyu_shared.events.export import event_schema, render_all
from siyu_shared.events.registry import all_specs, envelope, parse_data, spec_of
from siyu_shared.events.topics import Topic, TopicNames, dlq_name

SHANGHAI = timezone(timedelta(hours=8))


def _order_paid() -> OrderPaid:
    return OrderPaid(
        order_id="tmall:3000000000001",
        order_no="3000000000001",
        channel="tmall",
        person_id="p_1",
        amount_fen=9900,
        paid_at=datetime(2024, 1, 1, 12, 0, tzinfo=SHANGHAI),
        lines=[OrderLine(line_id="3000000000001", category="serum", amount_fen=9900)],
        source=SourceRef(channel="tmall", account_id="shop-a", account_kind="shop"),
    )


def test_envelope_round_trips_through_json_with_tenant_and_key() -> None:
    event = envelope(_order_paid(), tenant="glowlab", subject="p_1", source="/siyu/ingest")
    raw = event.to_json()
    decoded = CloudEvent.from_json(raw)
    assert decoded == event
    doc = orjson.loads(raw)
    assert doc["specversion"] == "1.0"
    assert doc["tenant"] == "glowlab"
    assert doc["type"] == "siyu.order.paid"
    assert doc["dataschema"].endswith("/siyu.order.paid.json")
    assert decoded.key == b"p_1"
    typed = parse_data(decoded)
    assert isinstance(typed, OrderPaid)
    assert typed.amount_fen == 9900
    # The Shanghai wall clock is kept as the same instant.
    assert typed.paid_at == datetime(2024, 1, 1, 4, 0, tzinfo=UTC)


def test_envelope_time_is_normalised_to_utc_and_naive_time_is_refused() -> None:
    event = envelope(_order_paid(), tenant="t", subject="p", source="/s", time=datetime(2024, 1, 1, 8, tzinfo=SHANGHAI))
    assert event.time == datetime(2024, 1, 1, 0, tzinfo=UTC)
    with pytest.raises(ValidationError):
        CloudEvent(id="x", source="/s", type="siyu.order.paid", time=datetime(2024, 1, 1), tenant="t", data={})


def test_event_payloads_are_frozen_and_money_cannot_be_negative() -> None:
    order = _order_paid()
    with pytest.raises(ValidationError):
        order.amount_fen = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        OrderLine(line_id="x", amount_fen=-1)


def test_every_type_is_registered_on_a_known_topic_with_a_description() -> None:
    specs = all_specs()
    assert len(specs) >= 18
    for spec in specs:
        assert spec.topic in Topic
        assert spec.description
        assert spec.model.event_type == spec.type_name
    assert spec_of("siyu.tags.changed").topic is Topic.TAGS


def test_exported_schema_validates_the_type_and_carries_the_topic() -> None:
    schema = event_schema(spec_of("siyu.order.paid"))
    assert schema["properties"]["type"] == {"const": "siyu.order.paid"}
    assert "amount_fen" in schema["properties"]["data"]["properties"]
    assert schema["x-topic"] == "orders.v1"
    assert set(render_all()) == {f"{s.type_name}.json" for s in all_specs()}


def test_deterministic_ids_depend_only_on_the_cause() -> None:
    assert deterministic_event_id("tmall", "123", "paid") == deterministic_event_id("tmall", "123", "paid")
    assert deterministic_event_id("tmall", "123", "paid") != deterministic_event_id("tmall", "123", "refund")


def test_topic_names_with_prefix_and_dlq() -> None:
    names = TopicNames("t1-")
    assert names.name(Topic.ORDERS) == "t1-orders.v1"
    assert names.dlq(Topic.ORDERS) == "t1-orders.v1.dlq"
    assert names.logical("t1-orders.v1.dlq") is Topic.ORDERS
    assert dlq_name("orders.v1.dlq") == "orders.v1.dlq"
    assert len(names.all()) == 2 * len(Topic)
    with pytest.raises(ValueError):
        names.logical("orders.v1")
