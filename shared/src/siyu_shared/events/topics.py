"""Topic names and keys, defined once for every service.

Every topic is keyed by the person id so that everything about one person is ordered within a partition,
and the same person lands on the same partition number of every topic (all topics share one partition count).
The one exception, ``siyu.statement.closed``, is keyed by payee; each event type declares its key in the registry.
Failed events go to ``<topic>.dlq``. A deployment may put a prefix before every name (``KAFKA_TOPIC_PREFIX``),
which tests use to isolate themselves on a shared broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DLQ_SUFFIX = ".dlq"
DEFAULT_PARTITIONS = 6


class Topic(StrEnum):
    """Logical topic names (without any deployment prefix)."""

    LEADS = "leads.v1"
    CONTACTS = "contacts.v1"
    ORDERS = "orders.v1"
    PERSONS = "persons.v1"
    TAGS = "tags.v1"
    TOUCHES = "touches.v1"
    COMMISSIONS = "commissions.v1"


TOPIC_DESCRIPTIONS: dict[Topic, str] = {
    Topic.LEADS: "Leads captured from public platforms (form fills, private messages, follows).",
    Topic.CONTACTS: "WeCom relationship changes: friend added/removed, group joined/left.",
    Topic.ORDERS: "Order lifecycle: paid, completed, refunded (full or partial), closed.",
    Topic.PERSONS: "Identity: persons merged and erased.",
    Topic.TAGS: "Tag changes of a person (added/removed with the rule versions that decided).",
    Topic.TOUCHES: "Touches sent, failed or skipped by journeys.",
    Topic.COMMISSIONS: "Commission accruals, reversals and closed statements (read by payroll and BI tools).",
}

PRODUCERS: dict[Topic, str] = {
    Topic.LEADS: "ingest",
    Topic.CONTACTS: "ingest",
    Topic.ORDERS: "ingest",
    Topic.PERSONS: "ingest",
    Topic.TAGS: "segmentation",
    Topic.TOUCHES: "journey",
    Topic.COMMISSIONS: "attribution",
}
"""The one service that publishes each topic, through its outbox relay."""

SUBSCRIPTIONS: dict[str, dict[str, tuple[Topic, ...]]] = {
    "segmentation": {"main": (Topic.LEADS, Topic.CONTACTS, Topic.ORDERS, Topic.TOUCHES, Topic.PERSONS)},
    "journey": {"main": (Topic.TAGS, Topic.LEADS, Topic.CONTACTS, Topic.ORDERS, Topic.PERSONS)},
    "attribution": {"main": (Topic.ORDERS, Topic.TOUCHES, Topic.LEADS, Topic.PERSONS)},
}
"""Service → consumer → the topics it reads. Each service's ``bootstrap.py`` builds its ``ConsumerSpec``s from this
table, and the AsyncAPI document's operations come from it."""


def consumer_group_id(topic_prefix: str, service: str, consumer: str) -> str:
    """The Kafka consumer group of one of a service's consumers (prefixed like the deployment's topics)."""
    return f"{topic_prefix}siyu.{service}.{consumer}"


def dlq_name(topic: str) -> str:
    """The dead-letter topic of ``topic`` (already prefixed or not)."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Resolves logical topics to the physical names of one deployment."""

    prefix: str = ""

    def name(self, topic: Topic) -> str:
        return f"{self.prefix}{topic.value}"

    def dlq(self, topic: Topic) -> str:
        return dlq_name(self.name(topic))

    def logical(self, physical: str) -> Topic:
        """The logical topic behind a physical name (DLQ suffix ignored)."""
        name = physical.removesuffix(DLQ_SUFFIX)
        if self.prefix and not name.startswith(self.prefix):
            raise ValueError(f"topic {physical!r} does not carry the prefix {self.prefix!r}")
        return Topic(name.removeprefix(self.prefix))

    def all(self, *, with_dlq: bool = True) -> list[str]:
        """Every physical topic this deployment needs, DLQs included unless told otherwise."""
        names = [self.name(t) for t in Topic]
        if with_dlq:
            names += [self.dlq(t) for t in Topic]
        return names
