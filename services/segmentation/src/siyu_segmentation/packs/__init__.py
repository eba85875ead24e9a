"""Rule packs from the seeds, shipped as YAML files next to this module (editable once installed)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from siyu_segmentation.domain.tagging import SLUG, RuleBody
from siyu_shared.values import Text

HERE = Path(__file__).parent


class PackFamily(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text = Field(pattern=SLUG)
    exclusive: bool = False
    description: Text = Field(default="", max_length=500)


class PackRule(RuleBody):
    id: Text = Field(pattern=SLUG)


class Pack(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Text = Field(pattern=SLUG)
    description: Text
    families: list[PackFamily] = Field(default_factory=list)
    rules: list[PackRule]


def load_pack_file(path: Path) -> Pack:
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Pack.model_validate(raw)


@cache
def shipped_packs() -> dict[str, Pack]:
    packs = [load_pack_file(path) for path in sorted(HERE.glob("*.yaml"))]
    return {pack.name: pack for pack in packs}
