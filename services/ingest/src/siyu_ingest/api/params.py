"""Path parameters every ingest route shares, in the shared value types (``siyu_shared.values``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from siyu_shared.values import TENANT_PATTERN, Id, Text

TenantPath = Annotated[str, Path(pattern=TENANT_PATTERN, examples=["glowlab"])]
"""The one tenant id rule (API keys, webhook paths and events alike)."""
ChannelName = Annotated[Text, Path(max_length=32, examples=["xiaohongshu"])]
DeliveryIdPath = Annotated[Id, Path(examples=[42])]
PersonIdPath = Annotated[Text, Path(min_length=1, max_length=64, examples=["5f0c9a1e"])]
ImportIdPath = Annotated[Text, Path(min_length=1, max_length=36, examples=["0b9c0c0e-2f4e-4c1e-9a52-8d2d8f3f9a10"])]
