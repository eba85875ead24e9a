"""The WeCom sender against a small WeCom look-alike: a real HTTP server on 127.0.0.1 started by the test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from siyu_journey.adapters.senders import Delivered, Failed, Outgoing, RetryLater
from siyu_journey.adapters.senders.wecom import WeComSender

pytestmark = pytest.mark.integration


class FakeWeCom:
    """Answers gettoken with a fresh token each time and each send with the next scripted (status, errcode)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, int]] = []
        self.tokens_issued = 0
        self.sends: list[dict[str, Any]] = []
        self.unreachable: set[str] = set()
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                assert url.path == "/cgi-bin/gettoken"
                assert parse_qs(url.query)["corpsecret"] == ["s3cret"]
                with fake.lock:
                    fake.tokens_issued += 1
                    token = f"tok-{fake.tokens_issued}"
                self._reply(200, {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    status, code = fake.script.pop(0) if fake.script else (200, 0)
                    fake.sends.append(
                        {"path": url.path, "token": parse_qs(url.query)["access_token"][0], "body": body, "code": code}
                    )
                if status >= 500:
                    self._reply(status, {})
                else:
                    failed = [u for u in body.get("external_userid", []) if u in fake.unreachable]
                    self._reply(200, {"errcode": code, "errmsg": "scripted", "msgid": "m1", "fail_list": failed})

        return Handler


@pytest.fixture
def wecom() -> Iterator[tuple[FakeWeCom, str]]:
    fake = FakeWeCom()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def touch(n: int, channel: str = "wecom_1v1") -> Outgoing:
    return Outgoing(f"t{n}", "brand", f"p{n}", channel, "staff-1", "小完子", "你好", recipient=f"wm{n}")


async def test_token_is_cached_refreshed_on_expiry_and_errors_are_classified(wecom: tuple[FakeWeCom, str]) -> None:
    fake, url = wecom
    sender = WeComSender(base_url=url, corp_id="corp-a", corp_secret="s3cret", backoff_s=0.01, timeout_s=30)
    try:
        # Two plain sends: one token for both.
        assert await sender.send([touch(1), touch(2)]) == [Delivered(), Delivered()]
        assert fake.tokens_issued == 1
        first = next(s for s in fake.sends if s["body"].get("external_userid") == ["wm1"])  # the two race
        assert first["body"] == {
            "chat_type": "single",
            "sender": "staff-1",
            "text": {"content": "你好"},
            "external_userid": ["wm1"],
        }
        # Expired token: refreshed once, the send goes through with the new one.
        fake.script = [(200, 42001)]
        assert await sender.send([touch(3)]) == [Delivered()]
        assert fake.tokens_issued == 2
        assert fake.sends[-1]["token"] == "tok-2"
        # Transient: a 5xx and "system busy" are retried with backoff.
        fake.script = [(502, 0), (200, -1)]
        assert await sender.send([touch(4)]) == [Delivered()]
        # Frequency limit: slow down and come back later (the delivery loop re-queues the touch).
        fake.script = [(200, 45009)]
        [outcome] = await sender.send([touch(5)])
        assert isinstance(outcome, RetryLater) and outcome.reason == "wecom_rate_limited:45009"
        # Permanent: recorded with the code, never retried.
        before = len(fake.sends)
        fake.script = [(200, 40003)]
        assert await sender.send([touch(6)]) == [Failed("wecom_errcode:40003")]
        assert len(fake.sends) == before + 1
        # Accepted, but the recipient is listed as unreachable: failed for good, not delivered.
        fake.unreachable = {"wm9"}
        assert await sender.send([touch(9)]) == [Failed("wecom_fail_list: not reachable from the sender")]
        # No external_userid: nothing is sent to a made-up recipient.
        before = len(fake.sends)
        nobody = Outgoing("t10", "brand", "p10", "wecom_1v1", "staff-1", "小完子", "你好", recipient=None)
        assert await sender.send([nobody]) == [Failed("no_recipient: the person has no WeCom external_userid")]
        assert len(fake.sends) == before
        # Moments and groups use their own APIs.
        await sender.send([touch(7, "wecom_moments"), touch(8, "wecom_group")])
        assert {s["path"] for s in fake.sends[-2:]} == {
            "/cgi-bin/externalcontact/add_moment_task",
            "/cgi-bin/externalcontact/add_msg_template",
        }
    finally:
        await sender.aclose()


async def test_an_unreachable_wecom_is_retried_later_not_failed() -> None:
    sender = WeComSender(base_url="http://127.0.0.1:9", corp_id="corp-b", corp_secret="s3cret", backoff_s=0.01)
    try:
        [outcome] = await sender.send([touch(1)])
        assert isinstance(outcome, RetryLater)
    finally:
        await sender.aclose()


async def test_sms_sender_passes_the_touch_id_as_idempotency_key() -> None:
    from siyu_journey.adapters.senders.sms import SmsSender

    seen: list[dict[str, Any]] = []
    answers = [503, 200, 400]

    class Gateway(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answers.pop(0))
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sender = SmsSender(base_url=f"http://127.0.0.1:{server.server_address[1]}", api_key="k", sign_name="品牌")
    try:
        [busy] = await sender.send([touch(1, "sms")])
        assert isinstance(busy, RetryLater)
        assert await sender.send([touch(1, "sms")]) == [Delivered()]
        assert await sender.send([touch(2, "sms")]) == [Failed("sms_rejected:400")]
        assert [s["out_id"] for s in seen] == ["t1", "t1", "t2"]
        assert all("phone" not in s for s in seen)
    finally:
        await sender.aclose()
        server.shutdown()
        server.server_close()
        thread.join()
