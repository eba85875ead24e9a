"""What the demo story says happened, as ground truth for the end-to-end checks, read from the story itself, never
from what the platform made of it.

- ``expected_messages``: the WeCom 1v1 messages journey must send: (recipient, body) of each greeting and group
  invitation.
"""

from __future__ import annotations

from collections import Counter

from siyu_devstack.demo import dataset
from siyu_journey.domain.templates import render
from siyu_journey.examples import load_example


def external_userid(story: dataset.Dataset, human: dataset.Human) -> str:
    """The WeCom id the story gives a human who becomes a friend (its contacts are keyed by it)."""
    external = f"wmDemo{human.index:05d}"
    assert human.friend_of is not None and story.contacts[external].staff_id == human.friend_of
    return external


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
