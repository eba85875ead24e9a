"""WeCom's server API as far as the platform calls it, for the demo and the end-to-end tests.

Serves ``cgi-bin/gettoken`` and ``cgi-bin/externalcontact/get`` with the contacts it was given (remark mobiles,
unionid), and ``cgi-bin/externalcontact/add_msg_template`` (journey's WeCom sender: a message to customers),
recording every such call it receives, on a real socket in a background thread, so service processes reach it
over HTTP like the real one.

``add_msg_template`` answers as WeCom does: ``errcode`` 0 with a ``msgid`` and a ``fail_list`` of the
``external_userid`` values it cannot message (not an external contact of ``sender``). WeCom takes no idempotency
key for it: two calls are two messages, which is what the record is for.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

CORP_ID = "ww_demo_corp"
CORP_SECRET = "demo-corp-secret"
ACCESS_TOKEN = "demo-access-token"


@dataclass(frozen=True)
class SimContact:
    """What WeCom knows of one external contact: the staff who added them, remark mobiles, unionid."""

    external_userid: str
    staff_id: str
    name: str
    remark_mobiles: tuple[str, ...] = ()
    unionid: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class SentMessage:
    """One ``add_msg_template`` call as the simulator received it, and what it answered."""

    msgid: str
    chat_type: str
    sender: str | None
    external_userids: tuple[str, ...]
    content: str
    fail_list: tuple[str, ...]
    """The recipients WeCom could not message (not an external contact of ``sender``)."""

    @property
    def delivered_to(self) -> tuple[str, ...]:
        return tuple(u for u in self.external_userids if u not in self.fail_list)


@dataclass
class WeComSim:
    contacts: dict[str, SimContact] = field(default_factory=dict)
    calls: int = 0
    """``externalcontact/get`` calls."""
    sent: list[SentMessage] = field(default_factory=list)
    """Every ``add_msg_template`` call with a valid token, in the order received (appended from the server's
    thread: read a snapshot with :meth:`messages`)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _msgids: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def messages(self, since: int = 0) -> list[SentMessage]:
        """The recorded sends from index ``since`` on (``len(sim.sent)`` before a test: that test's sends)."""
        with self._lock:
            return self.sent[since:]

    def app(self) -> FastAPI:
        api = FastAPI(title="WeCom simulator")

        @api.get("/cgi-bin/gettoken")
        async def gettoken(corpid: str, corpsecret: str) -> dict[str, Any]:
            if corpsecret != CORP_SECRET:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            return {"errcode": 0, "errmsg": "ok", "access_token": ACCESS_TOKEN, "expires_in": 7200}

        @api.get("/cgi-bin/externalcontact/get")
        async def contact(access_token: str, external_userid: str) -> dict[str, Any]:
            self.calls += 1
            if access_token != ACCESS_TOKEN:
                return {"errcode": 40014, "errmsg": "invalid access_token"}
            known = self.contacts.get(external_userid)
            if known is None:
                return {"errcode": 84061, "errmsg": "not external contact"}
            external: dict[str, Any] = {"external_userid": known.external_userid, "name": known.name, "type": 1}
            if known.unionid:
                external["unionid"] = known.unionid
            follow = {
                "userid": known.staff_id,
                "remark": known.name,
                "remark_mobiles": list(known.remark_mobiles),
                "state": known.state or "",
                "createtime": 1700000000,
            }
            return {"errcode": 0, "errmsg": "ok", "external_contact": external, "follow_user": [follow]}

        @api.post("/cgi-bin/externalcontact/add_msg_template")
        async def add_msg_template(access_token: str, body: dict[str, Any]) -> dict[str, Any]:
            if access_token != ACCESS_TOKEN:
                return {"errcode": 40014, "errmsg": "invalid access_token"}
            chat_type = body.get("chat_type") or "single"
            sender = body.get("sender")
            recipients = tuple(str(u) for u in body.get("external_userid") or ())
            text = body.get("text") or {}
            content = text.get("content") if isinstance(text, dict) else None
            if chat_type not in ("single", "group") or not content:
                return {"errcode": 40058, "errmsg": "invalid parameter"}
            if chat_type == "single" and not recipients:
                return {"errcode": 40058, "errmsg": "external_userid required for a single chat"}
            if chat_type == "group" and not sender:
                return {"errcode": 40058, "errmsg": "sender required for a group message"}
            fail = tuple(u for u in recipients if not self._can_message(sender, u))
            with self._lock:
                msgid = f"msgDemo{next(self._msgids):08d}"
                self.sent.append(SentMessage(msgid, chat_type, sender, recipients, content, fail))
            return {"errcode": 0, "errmsg": "ok", "fail_list": list(fail), "msgid": msgid}

        return api

    def _can_message(self, sender: str | None, external_userid: str) -> bool:
        known = self.contacts.get(external_userid)
        return known is not None and (sender is None or known.staff_id == sender)


@contextmanager
def serving(contacts: Mapping[str, SimContact]) -> Iterator[tuple[WeComSim, str]]:
    """Run the simulator in a thread on a free loopback port; yields it (add contacts any time) and its base URL."""
    sim = WeComSim(dict(contacts))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(sim.app(), log_config=None, access_log=False, lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.025)
        yield sim, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
