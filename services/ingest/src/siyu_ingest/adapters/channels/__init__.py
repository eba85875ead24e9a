"""One adapter per channel: verify the raw bytes, find the platform's delivery id, parse into canonical facts."""

from __future__ import annotations

from siyu_ingest.adapters.channels.base import ChannelAdapter
from siyu_ingest.adapters.channels.doudian import DoudianAdapter
from siyu_ingest.adapters.channels.douyin import DouyinAdapter
from siyu_ingest.adapters.channels.oceanengine import OceanEngineAdapter
from siyu_ingest.adapters.channels.tmall import TmallAdapter
from siyu_ingest.adapters.channels.wecom import WeComAdapter
from siyu_ingest.adapters.channels.xiaohongshu import XiaohongshuAdapter

ADAPTERS: dict[str, ChannelAdapter] = {
    adapter.name: adapter
    for adapter in (
        DouyinAdapter(),
        OceanEngineAdapter(),
        XiaohongshuAdapter(),
        DoudianAdapter(),
        TmallAdapter(),
        WeComAdapter(),
    )
}
