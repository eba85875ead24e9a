"""What the demo story says happened, as ground truth for the end-to-end checks: read from the webhooks it posts
(decoded as the platforms wrote them) and from its humans, never from what the platform made of them.

- ``sent_events``: how many events of each type the story's webhooks must produce.
- ``expected_dcba``: the DCBA stage each person must end in, by an anchor that finds the person in the events
  (a WeCom ``external_userid`` or a Tmall order number); persons known by a lead only are counted.
- ``expected_messages``: the WeCom 1v1 messages journey must send: (recipient, body) of each greeting and group
  invitation.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass

import orjson

from siyu_devstack.demo import dataset
from siyu_ingest import samples
from siyu_ingest.adapters.channels import wecom_crypto
from siyu_journey.domain.templates import render
from siyu_journey.examples import load_example

LEAD_CHANNELS = frozenset({"xiaohongshu", "douyin", "oceanengine"})
"""Every webhook of these in the story carries one lead (a form, a clue, or a private message)."""
TMALL_TOPICS = {
    "taobao_trade_TradeBuyerPay": "siyu.order.paid",
    "taobao_trade_TradeSuccess": "siyu.order.completed",
    "taobao_refund_RefundSuccess": "siyu.order.refunded",
}
WECOM_CHANGES = {"add_external_contact": "siyu.contact.added", "del_follow_user": "siyu.contact.removed"}
DCBA = ("dcba_d_stranger", "dcba_c_ice_broken", "dcba_b_relationship", "dcba_a_buying")


def wecom_event(step: dataset.Delivery) -> ET.Element:
    """The event XML inside a signed WeCom callback (decrypted with the demo corp's key)."""
    creds = samples.CREDENTIALS["wecom"]
    encrypted = ET.fromstring(step.body).findtext("Encrypt") or ""
    plain = wecom_crypto.decrypt(encrypted, encoding_aes_key=creds["encoding_aes_key"], receive_id=creds["corp_id"])
    return ET.fromstring(plain)


def sent_events(story: dataset.Dataset) -> Counter[str]:
    """Event type → how many the story's webhooks must produce (lead.captured, contact.*, group.joined, order.*)."""
    counts: Counter[str] = Counter()
    for step in (s for p in story.phases for s in p.steps if isinstance(s, dataset.Delivery)):
        if step.channel in LEAD_CHANNELS:
            counts["siyu.lead.captured"] += 1
        elif step.channel == "tmall":
            counts[TMALL_TOPICS[orjson.loads(step.body)["topic"]]] += 1
        elif step.channel == "wecom":
            event = wecom_event(step)
            if event.findtext("Event") == "change_external_chat":
                assert event.findtext("UpdateDetail") == "add_member"
                counts["siyu.group.joined"] += len(event.findall("MemChangeList/Item"))
            else:
                counts[WECOM_CHANGES[event.findtext("ChangeType") or ""]] += 1
        else:
            raise AssertionError(f"the story posts {step.channel}: add what it means here")
    return counts


def removed_friends(story: dataset.Dataset) -> set[str]:
    """The external_userids whose friendship the story ends."""
    return {
        wecom_event(s).findtext("ExternalUserID") or ""
        for p in story.phases
        for s in p.steps
        if isinstance(s, dataset.Delivery)
        and s.channel == "wecom"
        and wecom_event(s).findtext("ChangeType") == "del_follow_user"
    }


def external_userid(story: dataset.Dataset, human: dataset.Human) -> str:
    """The WeCom id the story gives a human who becomes a friend (its contacts are keyed by it)."""
    external = dataset.external_userid(human)
    assert human.friend_of is not None and story.contacts[external].staff_id == human.friend_of
    return external


@dataclass(frozen=True)
class Expected:
    """The DCBA stage persons must end in: by anchor (``wecom:<external_userid>`` or ``order:<order_no>``), and
    how many persons in all end in each stage."""

    by_anchor: dict[str, str]
    counts: Counter[str]


def expected_dcba(story: dataset.Dataset) -> Expected:
    """The pack's rules applied to the story: A has an order not refunded in full; B is a friend in a group; C a
    friend; D the rest (a friend who deleted the staff is no friend any more). One person per human (lead, the
    friend whose remark mobile matched, the orders whose receiver mobile matched), plus a person for a friend whose
    remark mobile nobody recorded and one for a buyer whose orders show a masked phone only."""
    removed = removed_friends(story)
    by_anchor: dict[str, str] = {}
    counts: Counter[str] = Counter()

    def stage(*, friend: str | None, group: bool, orders: tuple[str, ...]) -> str:
        kept = [o for o in orders if story.refunds_fen.get(o, 0) < story.order_amounts_fen[o]]
        if kept:
            return "dcba_a_buying"
        if friend is not None and friend not in removed:
            return "dcba_b_relationship" if group else "dcba_c_ice_broken"
        return "dcba_d_stranger"

    for human in story.humans:
        masked = dataset.masked_receiver(human)
        friend = external_userid(story, human) if human.friend_of is not None else None
        linked = friend if human.remark_mobile_known else None
        main = stage(friend=linked, group=human.group_of is not None, orders=() if masked else human.orders)
        counts[main] += 1
        if linked is not None:
            by_anchor[f"wecom:{linked}"] = main
        elif human.orders and not masked:
            by_anchor[f"order:{human.orders[0]}"] = main
        if friend is not None and linked is None:
            alone = stage(friend=friend, group=human.group_of is not None, orders=())
            by_anchor[f"wecom:{friend}"] = alone
            counts[alone] += 1
        if human.orders and masked:
            bought = stage(friend=None, group=False, orders=human.orders)
            by_anchor[f"order:{human.orders[0]}"] = bought
            counts[bought] += 1
    assert counts.total() == story.expected_persons
    return Expected(by_anchor, counts)


def expected_messages(story: dataset.Dataset) -> dict[str, Counter[tuple[str, str]]]:
    """Journey → (external_userid, body) → 1 for each WeCom 1v1 message the story must cause: a greeting to every
    new friend; a group invitation to every friend (linked to the buyer by a remark mobile) whose order reached the
    journey's threshold. Buyers WeCom cannot reach (no friend linked) are skipped by journey (``no_wecom_contact``)."""
    greeting, invite = load_example("greeting"), load_example("group_invite")
    threshold = invite.trigger.min_amount_fen or 0
    hello = render(greeting.templates["hello"], {"persona": greeting.persona or ""})
    invitation = render(invite.templates["invite"], {"persona": invite.persona or ""})
    out: dict[str, Counter[tuple[str, str]]] = {"greeting": Counter(), "group_invite": Counter()}
    for human in story.humans:
        if human.friend_of is None:
            continue
        out["greeting"][(external_userid(story, human), hello)] += 1
        reached = any(story.order_amounts_fen[o] >= threshold for o in human.orders)
        if reached and human.remark_mobile_known and not dataset.masked_receiver(human):
            out["group_invite"][(external_userid(story, human), invitation)] += 1
    return out
