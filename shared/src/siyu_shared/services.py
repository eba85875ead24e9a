"""The four services, their database schemas and settings prefixes."""

from __future__ import annotations

SERVICES: tuple[str, ...] = ("ingest", "segmentation", "journey", "attribution")


def schema_of(service: str) -> str:
    """Each service owns exactly one Postgres schema, named after it."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    return service


def role_of(service: str) -> str:
    """The Postgres role a service logs in as; it can reach only its own schema."""
    return f"siyu_{schema_of(service)}"


def env_prefix_of(service: str) -> str:
    return f"{schema_of(service).upper()}_"
