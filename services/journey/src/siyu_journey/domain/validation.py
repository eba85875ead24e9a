"""Rejects journeys that could spam or never run: loops without a wait, unknown references, unreachable steps.

Every error names the step it is about, so an operator can fix the YAML without guessing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from siyu_journey.domain.definition import Branch, JourneyDefinition, Send, Wait


@dataclass(frozen=True, slots=True)
class Problem:
    step: str | None
    message: str

    def __str__(self) -> str:
        return f"step {self.step!r}: {self.message}" if self.step else self.message


def validate(definition: JourneyDefinition, *, known_tags: Collection[str] | None = None) -> list[Problem]:
    """Every problem found; an empty list means the journey can be published."""
    problems: list[Problem] = []
    ids = [s.id for s in definition.steps]
    seen: set[str] = set()
    for step_id in ids:
        if step_id in seen:
            problems.append(Problem(step_id, "duplicate step id"))
        seen.add(step_id)
    if problems:
        return problems
    for step in definition.steps:
        for target in definition.targets(step.id):
            if target not in seen:
                problems.append(Problem(step.id, f"goes to unknown step {target!r}"))
        if isinstance(step, Send) and step.template not in definition.templates:
            problems.append(Problem(step.id, f"unknown template {step.template!r}"))
        if known_tags is not None and isinstance(step, Branch):
            for tag in (step.condition.has_tag, step.condition.lacks_tag):
                if tag is not None and tag not in known_tags:
                    problems.append(Problem(step.id, f"unknown tag {tag!r}"))
    if known_tags is not None:
        for tag in [definition.trigger.tag, *definition.exit_on_tag_lost]:
            if tag is not None and tag not in known_tags:
                problems.append(Problem(None, f"trigger or exit refers to unknown tag {tag!r}"))
    env = SandboxedEnvironment()
    for name, source in definition.templates.items():
        try:
            env.parse(source)
        except TemplateSyntaxError as exc:
            problems.append(Problem(None, f"template {name!r} does not parse: {exc.message}"))
    if problems:
        return problems
    problems += _unreachable(definition)
    problems += _loops_without_wait(definition)
    return problems


def _unreachable(definition: JourneyDefinition) -> list[Problem]:
    reached: set[str] = set()
    todo = [definition.steps[0].id]
    while todo:
        step_id = todo.pop()
        if step_id in reached:
            continue
        reached.add(step_id)
        todo += definition.targets(step_id)
    return [Problem(s.id, "unreachable from the first step") for s in definition.steps if s.id not in reached]


def _loops_without_wait(definition: JourneyDefinition) -> list[Problem]:
    """A cycle among non-wait steps would fire touches without end in one go: reject it, naming a step on it."""
    edges = {
        s.id: [t for t in definition.targets(s.id) if not isinstance(definition.step(t), Wait)]
        for s in definition.steps
        if not isinstance(s, Wait)
    }
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    problems: list[Problem] = []

    def visit(node: str) -> None:
        colour[node] = grey
        for target in edges[node]:
            if colour[target] == grey:
                problems.append(Problem(target, "is on a loop without a wait step"))
            elif colour[target] == white:
                visit(target)
        colour[node] = black

    for node in edges:
        if colour[node] == white:
            visit(node)
    return problems
