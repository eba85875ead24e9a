"""Example journeys shipped with the service, drawn from the seed articles (YAML, GitOps-friendly)."""

from __future__ import annotations

from pathlib import Path

import yaml

from siyu_journey.domain.definition import JourneyDefinition

HERE = Path(__file__).parent


def example_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def load_example(name: str) -> JourneyDefinition:
    if name not in example_names():
        raise FileNotFoundError(name)
    return JourneyDefinition.model_validate(yaml.safe_load((HERE / f"{name}.yaml").read_text(encoding="utf-8")))
