"""Touch copy: Jinja2 in a sandbox (operators write templates; they must not reach Python objects)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_IMPURE_FILTERS = frozenset({"random"})


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: Template
    uses: frozenset[str]
    """The variables it reads (to key rendered copy by)."""
    pure: bool
    """No calls and no random filter: the same variables always give the same copy."""


@lru_cache(maxsize=1024)
def _compiled(source: str) -> _Compiled:
    ast = _ENV.parse(source)
    pure = not any(True for _ in ast.find_all(nodes.Call)) and not any(
        f.name in _IMPURE_FILTERS for f in ast.find_all(nodes.Filter)
    )
    return _Compiled(_ENV.from_string(source), frozenset(meta.find_undeclared_variables(ast)), pure)


@lru_cache(maxsize=4096)
def _rendered(source: str, variables: tuple[tuple[str, str], ...]) -> str:
    return _compiled(source).template.render(**dict(variables))


def render(source: str, variables: Mapping[str, Any]) -> str:
    """The copy of one touch. Variables are what the journey knows (persona, staff, tags, facts), never PII.

    A template that only reads plain strings (the persona, the staff account) and calls nothing renders the same
    copy for the same values, so that copy is rendered once per process, not once per touch."""
    compiled = _compiled(source)
    if compiled.pure:
        used = tuple(sorted((name, variables[name]) for name in compiled.uses if name in variables))
        if len(used) == len(compiled.uses) and all(type(value) is str for _, value in used):
            return _rendered(source, used)
    return compiled.template.render(**variables)
