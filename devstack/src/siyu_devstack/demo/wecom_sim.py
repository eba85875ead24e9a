"""WeCom's server API as far as the platform calls it, for the demo and the end-to-end tests.

Serves ``cgi-bin/gettoken`` and ``cgi-bin/externalcontact/get`` with the contacts it was given (remark mobiles,
unionid), on a real socket in a background thread, so service processes reach it over HTTP like the real one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

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


@dataclass
class WeComSim:
    contacts: dict[str, SimContact] = field(default_factory=dict)
    calls: int = 0

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

        return api


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
