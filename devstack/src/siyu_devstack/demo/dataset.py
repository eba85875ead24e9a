"""The demo brand's story as data: who came from where, who became a friend, joined a group, bought, refunded.

A beauty brand modelled on the seeds: a 小完子-style persona operated by four staff accounts, two group
activators, an enterprise account plus a KOL and a KOC account on Xiaohongshu, Douyin private messages and Ocean
Engine form leads, Tmall orders (some refunded), WeCom add-friend and group events. Everything is built as the
platforms send it (``siyu_ingest.samples`` signs it), deterministic for a seed and a clock; no I/O here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import orjson

from siyu_devstack.demo.wecom_sim import SimContact
from siyu_ingest import samples

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFF = ("xwz_01", "xwz_02", "xwz_03", "xwz_04")
"""The persona's staff accounts: every friend is assigned to one of them."""
ACTIVATORS = ("act_lily", "act_mia")
GROUP_CHATS = {"act_lily": "wrDemoGroupLily", "act_mia": "wrDemoGroupMia"}
XHS_ACCOUNTS = {"xhs-ent-1": "enterprise", "xhs-kol-9": "kol", "xhs-koc-3": "koc"}

Origin = Literal["xhs_ent", "xhs_kol", "xhs_koc", "douyin_dm", "oceanengine"]
ORIGINS: tuple[Origin, ...] = ("xhs_ent", "xhs_kol", "xhs_koc", "douyin_dm", "oceanengine")
ORIGIN_WEIGHTS = (25, 20, 10, 25, 20)
STATE_CODES: dict[Origin, str] = {
    "xhs_ent": "xhs_ent_note",
    "xhs_kol": "xhs_kol9_note",
    "xhs_koc": "xhs_koc3_note",
    "douyin_dm": "dy_dm",
    "oceanengine": "oe_form",
}
PRICES_YUAN = ("99.00", "159.00", "299.00", "399.00", "589.00")
MOBILE_PREFIXES = ("138", "139", "136", "158", "188", "177", "186", "135")


@dataclass(frozen=True)
class Delivery:
    """One webhook exactly as the channel posts it."""

    channel: str
    body: bytes
    headers: dict[str, str]
    query: dict[str, str]


@dataclass(frozen=True)
class Claim:
    """A staff member claims an order number through an internal tool (``POST /v1/claims``)."""

    order_no: str
    staff_id: str
    role: Literal["staff_1v1", "group_activator"] = "staff_1v1"
    via: Literal["1v1", "group"] = "1v1"


Step = Delivery | Claim


@dataclass(frozen=True)
class Phase:
    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Human:
    """Ground truth for one real person of the story (the platform has to discover who is who)."""

    index: int
    origin: Origin
    phone: str
    friend_of: str | None
    remark_mobile_known: bool
    group_of: str | None
    orders: tuple[str, ...]


@dataclass
class Dataset:
    phases: list[Phase]
    contacts: dict[str, SimContact]
    humans: list[Human]
    order_amounts_fen: dict[str, int] = field(default_factory=dict)
    refunds_fen: dict[str, int] = field(default_factory=dict)
    """Order number → refunded amount (the whole order, or a third of it)."""
    period: str = ""
    """The reporting period (``YYYY-MM``, Shanghai) the whole story falls in."""

    @property
    def deliveries(self) -> int:
        return sum(isinstance(s, Delivery) for p in self.phases for s in p.steps)

    @property
    def expected_persons(self) -> int:
        """How many persons identity resolution can tell apart: every human, plus a separate person for a WeCom
        friend whose remark mobile nobody recorded and for a buyer whose order shows a masked phone only."""
        unlinked_friends = sum(1 for h in self.humans if h.friend_of is not None and not h.remark_mobile_known)
        masked_buyers = sum(1 for h in self.humans if h.orders and masked_receiver(h))
        return len(self.humans) + unlinked_friends + masked_buyers

    @property
    def claims(self) -> int:
        return sum(isinstance(s, Claim) for p in self.phases for s in p.steps)


def delivery(channel: str, signed: samples.Signed) -> Delivery:
    """A signed ``samples`` builder's output as a step to post."""
    body, headers, query = signed
    return Delivery(channel, body, dict(headers), dict(query))


def shanghai_text(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def story_window(now: datetime, days: int = 3) -> tuple[datetime, datetime]:
    """The story's time span: the last ``days`` up to ``now``, kept inside one month (Shanghai) so one reporting
    period holds all of it. In the first hour of a month the story is told in the month that just ended instead,
    ending a minute before midnight."""
    local = now.astimezone(SHANGHAI)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    if now - month_start < timedelta(hours=1):
        end = month_start - timedelta(minutes=1)
        return end - timedelta(days=days), end
    return max(now - timedelta(days=days), month_start + timedelta(minutes=1)), now


def period_of(at: datetime) -> str:
    """The reporting period (``YYYY-MM``, Shanghai) an instant falls in."""
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


class _Clock:
    """Hands out strictly increasing event times across the window, phase by phase."""

    def __init__(self, start: datetime, end: datetime, slots: int) -> None:
        self.at, self.step = start, (end - start) / max(slots, 1)

    def tick(self) -> datetime:
        self.at += self.step
        return self.at


def build(*, now: datetime, persons: int = 120, seed: int = 7) -> Dataset:
    """The story of ``persons`` people over the few days before ``now``."""
    rng = random.Random(seed)
    start, end = story_window(now)
    clock = _Clock(start, end - timedelta(minutes=5), persons * 8)
    humans = [_human(rng, i) for i in range(persons)]

    leads: list[Step] = []
    adds: list[Step] = []
    groups: list[Step] = []
    paid: list[Step] = []
    claims: list[Step] = []
    after: list[Step] = []
    contacts: dict[str, SimContact] = {}
    amounts: dict[str, int] = {}
    refunds: dict[str, int] = {}

    for human in humans:
        leads += _leads(human, clock.tick())
    for human in humans:
        if human.friend_of is None:
            continue
        external = external_userid(human)
        contacts[external] = SimContact(
            external_userid=external,
            staff_id=human.friend_of,
            name=f"顾客{human.index:03d}",
            remark_mobiles=(human.phone,) if human.remark_mobile_known else (),
            unionid=f"oDemoUnion{human.index:05d}",
            state=STATE_CODES[human.origin],
        )
        xml = samples.wecom_add_contact(
            external_userid=external,
            staff=human.friend_of,
            state=STATE_CODES[human.origin],
            create_time=int(clock.tick().timestamp()),
        )
        adds.append(delivery("wecom", samples.wecom(xml)))
    for human in humans:
        if human.group_of is not None:
            xml = samples.wecom_group_join(
                external_userids=[external_userid(human)],
                chat_id=GROUP_CHATS[human.group_of],
                create_time=int(clock.tick().timestamp()),
            )
            groups.append(delivery("wecom", samples.wecom(xml)))
    for human in humans:
        for order_no in human.orders:
            amount = rng.choice(PRICES_YUAN)
            amounts[order_no] = int(amount.replace(".", ""))
            message = samples.tmall_message(
                message_id=f"tmc-pay-{order_no}",
                topic="taobao_trade_TradeBuyerPay",
                tid=order_no,
                buyer=f"AAHdemo{human.index:05d}",
                payment=amount,
                pub_time=shanghai_text(clock.tick()),
                extra={"receiver_mobile": _masked(human.phone) if masked_receiver(human) else human.phone},
            )
            paid.append(delivery("tmall", samples.tmall(message)))
            claims += _claims(rng, human, order_no)
            after += _aftermath(rng, human, order_no, amounts[order_no], clock, refunds)
    for human in humans:
        if human.friend_of is not None and rng.random() < 0.05:
            xml = samples.wecom_contact_removed(
                external_userid=external_userid(human), staff=human.friend_of, create_time=int(clock.tick().timestamp())
            )
            after.append(delivery("wecom", samples.wecom(xml)))

    phases = [
        Phase("leads from Xiaohongshu, Douyin and Ocean Engine", tuple(leads)),
        Phase("WeCom add-friend", tuple(adds)),
        Phase("WeCom group joins", tuple(groups)),
        Phase("Tmall orders paid", tuple(paid)),
        Phase("order-number claims", tuple(claims)),
        Phase("completions, refunds and deleted friends", tuple(after)),
    ]
    return Dataset(
        phases=phases,
        contacts=contacts,
        humans=humans,
        order_amounts_fen=amounts,
        refunds_fen=refunds,
        period=period_of(end),
    )


def _human(rng: random.Random, index: int) -> Human:
    origin = rng.choices(ORIGINS, weights=ORIGIN_WEIGHTS)[0]
    phone = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
    friend = rng.random() < 0.75
    staff = STAFF[index % len(STAFF)] if friend else None
    group = rng.choice(ACTIVATORS) if friend and rng.random() < 0.4 else None
    buys = rng.random() < (0.55 if friend else 0.1)
    count = (2 if rng.random() < 0.25 else 1) if buys else 0
    orders = tuple(f"{3900000000000 + index * 10 + n}" for n in range(count))
    return Human(index, origin, phone, staff, friend and rng.random() < 0.85, group, orders)


def external_userid(human: Human) -> str:
    """The WeCom ``external_userid`` the story gives a human who becomes a friend."""
    return f"wmDemo{human.index:05d}"


def masked_receiver(human: Human) -> bool:
    """Every ninth buyer's order carries a masked mobile (``138****0000``): kept, never matched."""
    return human.index % 9 == 0


def _masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def _leads(human: Human, at: datetime) -> list[Step]:
    ms = int(at.timestamp() * 1000)
    if human.origin.startswith("xhs_"):
        account = {"xhs_ent": "xhs-ent-1", "xhs_kol": "xhs-kol-9", "xhs_koc": "xhs-koc-3"}[human.origin]
        lead = samples.xiaohongshu_lead(
            leads_id=f"XHS-DEMO-{human.index:05d}", phone=human.phone, account_id=account, name=f" 顾客{human.index} "
        )
        lead["timestamp"] = ms
        if human.origin != "xhs_ent":
            lead["data"]["note_id"] = f"note-{account}-{human.index % 5}"
        lead["data"]["submitted_time"] = shanghai_text(at)
        lead["data"]["data"][2]["value"] = ("干皮", "油皮", "混合皮", "敏感肌")[human.index % 4]
        return [delivery("xiaohongshu", samples.xiaohongshu(lead))]
    if human.origin == "douyin_dm":
        open_id = f"dyDemoOpen{human.index:05d}"
        first = samples.douyin_dm(open_id=open_id, text="面霜适合干皮吗？", message_id=f"dm{human.index:05d}a")
        second = samples.douyin_dm(
            open_id=open_id,
            text=f"我的手机号是{human.phone[:3]} {human.phone[3:7]} {human.phone[7:]}，麻烦发下试用装",
            message_id=f"dm{human.index:05d}b",
            content_as_string=human.index % 2 == 0,
        )
        for message in (first, second):
            message["content"] = _with_time(message["content"], ms)
        return [
            delivery("douyin", samples.douyin(first, msg_id=f"msg-dm{human.index:05d}a")),
            delivery("douyin", samples.douyin(second, msg_id=f"msg-dm{human.index:05d}b")),
        ]
    clue = samples.oceanengine_clue(
        message_id=f"oe-msg-{human.index:05d}", clue_id=f"OE-DEMO-{human.index:05d}", telephone=human.phone
    )
    clue["publish_time"] = clue["timestamp"] = ms
    clue["data"] = orjson.dumps({**orjson.loads(clue["data"]), "create_time_detail": shanghai_text(at)}).decode()
    return [delivery("oceanengine", samples.oceanengine(clue))]


def _with_time(content: object, ms: int) -> object:
    if isinstance(content, str):
        decoded = orjson.loads(content)
        decoded["create_time"] = ms
        return orjson.dumps(decoded).decode()
    if isinstance(content, dict):
        return {**content, "create_time": ms}
    return content


def _claims(rng: random.Random, human: Human, order_no: str) -> list[Step]:
    """The group activator sometimes asks for the order number first (activity credit only); the friend's 1v1
    staff claims most orders."""
    out: list[Step] = []
    if human.group_of is not None and rng.random() < 0.5:
        out.append(Claim(order_no, human.group_of, role="group_activator", via="group"))
    if human.friend_of is not None and rng.random() < 0.7:
        out.append(Claim(order_no, human.friend_of))
    return out


def _aftermath(
    rng: random.Random, human: Human, order_no: str, amount_fen: int, clock: _Clock, refunds: dict[str, int]
) -> list[Step]:
    out: list[Step] = []
    buyer = f"AAHdemo{human.index:05d}"
    roll = rng.random()
    if roll < 0.12:
        full = rng.random() < 0.4
        refund_fen = refunds[order_no] = amount_fen if full else amount_fen // 3
        refund = samples.tmall_message(
            message_id=f"tmc-refund-{order_no}",
            topic="taobao_refund_RefundSuccess",
            tid=order_no,
            buyer=buyer,
            pub_time=shanghai_text(clock.tick()),
            extra={"refund_id": f"R{order_no}", "refund_fee": f"{refund_fen / 100:.2f}"},
        )
        out.append(delivery("tmall", samples.tmall(refund)))
    elif roll < 0.7:
        done = samples.tmall_message(
            message_id=f"tmc-done-{order_no}",
            topic="taobao_trade_TradeSuccess",
            tid=order_no,
            buyer=buyer,
            pub_time=shanghai_text(clock.tick()),
            extra={"status": "TRADE_FINISHED"},
        )
        out.append(delivery("tmall", samples.tmall(done)))
    return out
