"""Webhook requests the OpenAPI cannot describe: signed with the tenant's channel secrets, so the parsers are reached.

The documented body of ``POST /v1/webhooks/{tenant}/{channel}`` is any bytes; a generated body fails the signature
check (a 401, which the generated modes cover). These strategies sign what they send, as each platform signs:

- a realistic delivery of each channel (``siyu_ingest.samples``) with one value replaced by a hostile one, at any
  depth, inside the JSON documents that platforms nest as strings (Ocean Engine ``data``, Tmall ``content``,
  Doudian ``data``) and in WeCom's XML fields;
- arbitrary JSON documents;
- URL verifications (GET) with hostile challenges and echo strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests
from hypothesis import strategies as st

from siyu_ingest import samples

from .harness import HOSTILE, HOSTILE_TEXT

CHANNELS: tuple[str, ...] = tuple(sorted(samples.CREDENTIALS))
WEBHOOK = "/v1/webhooks/{tenant}/{channel}"


@dataclass(frozen=True)
class Embedded:
    """A JSON document a platform sends as a string inside its JSON."""

    value: Any


def json_seeds() -> list[tuple[str, Any]]:
    """Valid payloads of every JSON channel, as decoded documents (nested JSON strings decoded too)."""
    payloads: list[tuple[str, Any]] = [
        ("douyin", samples.douyin_dm(open_id="o1", text="13800000000", message_id="@m1")),
        ("douyin", samples.douyin_follow(open_id="o2", log_id="l2")),
        ("douyin", {"event": "verify_webhook", "client_key": "k", "content": {"challenge": 12345}}),
        ("xiaohongshu", samples.xiaohongshu_lead(leads_id="x1", phone="13800138000")),
        ("oceanengine", samples.oceanengine_clue(message_id="m1", clue_id="c1", telephone="13800138001")),
        ("oceanengine", {"event": "verify_webhook", "challenge": 12345}),
        ("doudian", [samples.doudian_message(tag="110", msg_id="d1", p_id=1)]),
        ("doudian", [samples.doudian_message(tag="206", msg_id="d2", p_id=2)]),
        (
            "tmall",
            samples.tmall_message(message_id="t1", topic="taobao_trade_TradeBuyerPay", tid="11", buyer="b1"),
        ),
        (
            "tmall",
            samples.tmall_message(message_id="t2", topic="taobao_refund_RefundSuccess", tid="12", buyer="b2"),
        ),
    ]
    return [(channel, _expand(payload)) for channel, payload in payloads]


WECOM_SEEDS: tuple[dict[str, Any], ...] = (
    {
        "ToUserName": "ww_corp",
        "FromUserName": "sys",
        "CreateTime": 1403610513,
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": "add_external_contact",
        "UserID": "zhangsan",
        "ExternalUserID": "wmFuzz",
        "State": "xhs_note_01",
        "WelcomeCode": "WELCOMECODE",
    },
    {
        "ToUserName": "ww_corp",
        "FromUserName": "sys",
        "CreateTime": 1403610513,
        "MsgType": "event",
        "Event": "change_external_chat",
        "ChatId": "wrGroupChat",
        "ChangeType": "update",
        "UpdateDetail": "add_member",
        "JoinScene": 3,
        "MemChangeCnt": 1,
        "MemChangeList": ["wmFuzz"],
    },
)


def _expand(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return Embedded(_expand(json.loads(value)))
        except ValueError:
            return value
    return value


def _collapse(value: Any) -> Any:
    if isinstance(value, Embedded):
        return json.dumps(_collapse(value.value))
    if isinstance(value, dict):
        return {k: _collapse(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_collapse(v) for v in value]
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    inner = value.value if isinstance(value, Embedded) else value
    step = (*prefix, Embedded) if isinstance(value, Embedded) else prefix
    if isinstance(inner, dict):
        for key, item in inner.items():
            out += _paths(item, (*step, key))
    elif isinstance(inner, list):
        for index, item in enumerate(inner):
            out += _paths(item, (*step, index))
    return out


def _put(document: Any, path: tuple[Any, ...], value: Any, *, as_key: bool) -> Any:
    if not path:
        if as_key and isinstance(document, dict):
            return {**document, (value if isinstance(value, str) else "\x00"): "x"}
        return value
    head, rest = path[0], path[1:]
    if head is Embedded:
        return Embedded(_put(document.value, rest, value, as_key=as_key))
    if isinstance(document, dict):
        return {**document, head: _put(document[head], rest, value, as_key=as_key)}
    copy = list(document)
    copy[head] = _put(copy[head], rest, value, as_key=as_key)
    return copy


def poisoned_json(channel_doc: tuple[str, Any], pick: int, value: Any, as_key: bool) -> tuple[str, bytes]:
    channel, document = channel_doc
    paths = _paths(document)
    poisoned = _put(document, paths[pick % len(paths)], value, as_key=as_key)
    return channel, json.dumps(_collapse(poisoned)).encode()


def poisoned_wecom(fields: dict[str, Any], pick: int, value: Any) -> bytes:
    keys = sorted(fields)
    key = keys[pick % len(keys)]
    text = value if isinstance(value, str) else json.dumps(value)
    # XML cannot carry a NUL or a lone surrogate as such: they go in as the platform would have to escape them.
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    changed = {**fields, key: [text] if key == "MemChangeList" else text}
    return samples.wecom_xml(changed)


def _json_values() -> st.SearchStrategy[Any]:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    return st.recursive(
        leaves | st.sampled_from(HOSTILE),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=12,
    )


def _post(base_url: str, tenant: str, channel: str, body: bytes) -> requests.PreparedRequest:
    signed_body, headers, query = samples.sign_raw(channel, body)
    url = base_url + WEBHOOK.format(tenant=tenant, channel=channel)
    return requests.Request("POST", url, headers=headers, params=query, data=signed_body).prepare()


def _get(base_url: str, tenant: str, channel: str, query: dict[str, str]) -> requests.PreparedRequest:
    url = base_url + WEBHOOK.format(tenant=tenant, channel=channel)
    return requests.Request("GET", url, params=query).prepare()


def signed_posts(base_url: str, tenant: str) -> st.SearchStrategy[requests.PreparedRequest]:
    """Signed deliveries: poisoned realistic ones, poisoned WeCom events, and signed arbitrary JSON."""
    seeds = json_seeds()
    poisoned = st.builds(
        poisoned_json,
        st.sampled_from(seeds),
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from(HOSTILE),
        st.booleans(),
    ).map(lambda made: _post(base_url, tenant, made[0], made[1]))
    wecom = st.builds(
        poisoned_wecom,
        st.sampled_from(WECOM_SEEDS),
        st.integers(min_value=0, max_value=10**6),
        st.sampled_from(HOSTILE),
    ).map(lambda xml: _post(base_url, tenant, "wecom", xml))
    arbitrary = st.builds(
        lambda channel, value: _post(base_url, tenant, channel, json.dumps(value).encode()),
        st.sampled_from([c for c in CHANNELS if c != "wecom"]),
        _json_values(),
    )
    return st.one_of(poisoned, poisoned, wecom, arbitrary)


def verifications(base_url: str, tenant: str) -> st.SearchStrategy[requests.PreparedRequest]:
    """URL verifications: Ocean Engine challenges and WeCom echo strings, hostile ones included."""
    challenges = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=20) | st.integers().map(str)
    ocean = challenges.map(
        lambda challenge: _get(base_url, tenant, "oceanengine", {"event": "verify_webhook", "challenge": challenge})
    )
    echo = challenges.map(lambda text: _get(base_url, tenant, "wecom", samples.wecom_echo(text or "e")))
    forged = st.dictionaries(
        st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr", "event", "challenge"]),
        challenges,
        max_size=4,
    ).flatmap(lambda query: st.sampled_from(CHANNELS).map(lambda channel: _get(base_url, tenant, channel, query)))
    return st.one_of(ocean, echo, forged)
