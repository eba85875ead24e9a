"""The registry of event types: each type name maps to a frozen Pydantic model and the topic it travels on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from siyu_shared.events.envelope import CloudEvent, new_event_id
from siyu_shared.events.topics import Topic
from siyu_shared.values import unstorable

SCHEMA_BASE_URI = "https://siyu.dev/schemas/events"
PERSON_KEY = "The id of the person the event is about (`data.person_id`); also the CloudEvents `subject`."


class EventData(BaseModel):
    """Base of every event payload. Frozen; unknown fields are ignored so additive changes stay compatible."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[Topic]

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """Refuse, where the event is built, what a consumer's database could not hold (NUL, beyond int64)."""
        reason = unstorable(data, where=cls.__name__)
        if reason:
            raise ValueError(reason)
        return data


@dataclass(frozen=True, slots=True)
class EventSpec:
    type_name: str
    model: type[EventData]
    topic: Topic
    description: str
    key: str
    """What the Kafka key (and the CloudEvents ``subject``) of an event of this type is."""

    @property
    def schema_uri(self) -> str:
        return f"{SCHEMA_BASE_URI}/{self.type_name}.json"


class UnknownEventType(LookupError):
    pass


_REGISTRY: dict[str, EventSpec] = {}

E = TypeVar("E", bound=EventData)


def event_type(name: str, *, topic: Topic, key: str = PERSON_KEY) -> Callable[[type[E]], type[E]]:
    """Class decorator that registers a payload model under its CloudEvents ``type``; ``key`` describes the Kafka
    key its producer gives it (the envelope's ``subject``)."""

    def register(model: type[E]) -> type[E]:
        if name in _REGISTRY and _REGISTRY[name].model is not model:
            raise ValueError(f"event type {name!r} registered twice")
        model.event_type = name
        model.topic = topic
        description = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        _REGISTRY[name] = EventSpec(type_name=name, model=model, topic=topic, description=description, key=key)
        return model

    return register


def spec_of(name: str) -> EventSpec:
    _load_catalog()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEventType(name) from None


def all_specs() -> list[EventSpec]:
    _load_catalog()
    return sorted(_REGISTRY.values(), key=lambda s: s.type_name)


def parse_data(event: CloudEvent) -> EventData:
    """The typed payload of an envelope (raises UnknownEventType or pydantic.ValidationError)."""
    model: type[EventData] = spec_of(event.type).model
    return model.model_validate(event.data)


def envelope(
    data: EventData,
    *,
    tenant: str,
    subject: str | None,
    source: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """Wrap a payload in a CloudEvents envelope for its registered type."""
    spec = spec_of(type(data).event_type)
    payload: dict[str, Any] = data.model_dump(mode="json")
    return CloudEvent(
        id=event_id or new_event_id(),
        source=source,
        type=spec.type_name,
        time=time or datetime.now(UTC),
        subject=subject,
        tenant=tenant,
        dataschema=spec.schema_uri,
        data=payload,
    )


def _load_catalog() -> None:
    # Importing the catalog registers every type; done lazily to avoid an import cycle.
    import siyu_shared.events.catalog  # noqa: F401
