"""Touch copy: Jinja2 in a sandbox (operators write templates; they must not reach Python objects)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """The copy of one touch. Variables are what the journey knows (persona, staff, tags, facts), never PII."""
    return _compiled(source).render(**variables)
