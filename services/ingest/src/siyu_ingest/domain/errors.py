"""Errors the channel adapters and the domain raise; the HTTP edge maps them to status codes."""

from __future__ import annotations


class Malformed(ValueError):
    """The delivery cannot be understood (400 at the edge, `failed` with the reason in the worker)."""


class BadSignature(Exception):
    """The delivery is not signed by the configured credentials (401, nothing stored)."""


class NotConfigured(LookupError):
    """The tenant has no credentials for this channel (404)."""
