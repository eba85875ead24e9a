"""Value objects shared by several event types."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from siyu_shared.values import Timestamp

Channel = Literal["douyin", "oceanengine", "xiaohongshu", "doudian", "tmall", "wecom", "import", "other"]
AccountKind = Literal["enterprise", "kol", "koc", "brand", "staff", "shop", "unknown"]

PersonId = Field(min_length=1, max_length=64, description="Siyu person id (stable; survives merges as survivor).")
Fen = Field(ge=0, description="Money in integer fen (1 CNY = 100 fen).")
__all__ = ["AccountKind", "Channel", "Fen", "PersonId", "SourceRef", "Timestamp"]


class SourceRef(BaseModel):
    """Where a lead, contact or order came from: kept for segmentation and attribution."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    channel: Channel
    account_id: str | None = None
    account_kind: AccountKind = "unknown"
    campaign_id: str | None = None
    unit_id: str | None = None
    creative_id: str | None = None
    ad_id: str | None = None
    promotion_id: str | None = None
    note_id: str | None = None
    live_room_id: str | None = None
    partner_id: str | None = Field(default=None, description="KOL/KOC id credited for this source.")
    wecom_state: str | None = Field(default=None, description="WeCom `State` acquisition channel code.")
