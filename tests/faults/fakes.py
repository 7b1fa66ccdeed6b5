"""The outside world of the fault runs, in its own process so that a busy test process cannot
delay its answers (a late answer is a client timeout, and a timeout is a retry): a Slack Web API
whose weather a scenario scripts, and an SMTP server that can be down or refusing. Both count
what they accepted per account, by the run's account names, which every alert carries.

    python tests/faults/fakes.py --slack-port P --smtp-port Q --control-port C --token T

Control (JSON): POST /storm [{seconds, status, retry_after, delay, label}, ...] starts the
phases now; POST /smtp {up, refusing}; GET /counts returns what was accepted so far.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import re
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from slack_server import FakeSlack, Reply, _arguments, serve_local

ACCOUNT_NAME = "Faultco {:07d}"  # the run's accounts are named so, and alerts name their account
MARKER = re.compile(r"Faultco (\d{7})")


def markers(text: str) -> set[int]:
    """Return the account numbers a message names."""
    return {int(m) for m in MARKER.findall(text)}


@dataclass(frozen=True)
class Phase:
    """Weather for every channel until `until` seconds after the storm began."""

    until: float
    reply: Reply
    label: str


class StormSlack(FakeSlack):
    """FakeSlack plus storms: every chat.postMessage gets the current phase's answer.

    A timeout phase answers 504 after the client gave up, so it is recorded as not posted: the
    harness checks Tandem's promise, not Slack's (chat.postMessage has no idempotency key, so a
    timeout after Slack did post is a duplicate no sender can prevent).
    """

    def __init__(self, *, token: str) -> None:
        super().__init__(token=token)
        self._phases: list[Phase] = []
        self._began = 0.0
        self.storm_answers: Counter[str] = Counter()
        self.counts: dict[int, Counter[str]] = defaultdict(Counter)

    def storm(self, phases: list[dict[str, Any]]) -> None:
        self.storm_answers.clear()  # counts of this storm only
        self._began, total, timed = time.monotonic(), 0.0, []
        for p in phases:
            total += p["seconds"]
            headers = {"Retry-After": str(p["retry_after"])} if p.get("retry_after") else {}
            # 200: Slack's own answer (late, with a delay); 429: rate limited; else an outage page
            body = {"ok": False, "error": "ratelimited"} if p["status"] == 429 else None
            raw = None if body or p["status"] == 200 else f"<html>{p['status']}</html>"
            reply = Reply(p["status"], body, headers, raw, p.get("delay", 0.0))
            timed.append(Phase(total, reply, p["label"]))
        self._phases = timed

    async def _post_message(self, request: web.Request) -> web.Response:
        elapsed = time.monotonic() - self._began
        phase = next((p for p in self._phases if elapsed < p.until), None)
        if phase is None or not self._authorized(request):
            return await super()._post_message(request)
        args = await _arguments(request)
        self.storm_answers[phase.label] += 1
        await asyncio.sleep(phase.reply.delay)
        return self._answer(args, str(args.get("channel", "")), phase.reply)

    def _answer(self, args: dict[str, Any], channel: str, reply: Reply) -> web.Response:
        response = super()._answer(args, channel, reply)
        posted = self.received[-1]
        if posted.ok:
            for number in markers(f"{posted.text or ''} {posted.block_text}"):
                self.counts[number][channel] += 1
        return response


@dataclass
class Mailbox:
    """An aiosmtpd handler: accepts mail, or refuses every recipient with a 4xx while `refusing`.

    It runs in aiosmtpd's thread, the control endpoint in the main one: counts go under a lock.
    """

    refusing: bool = False
    refused: int = 0
    counts: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {str(n): dict(c) for n, c in self.counts.items()}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refusing:
            self.refused += 1
            return "451 4.3.2 Service busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain", "html"))
        text = f"{message['Subject']} {body.get_content() if body else ''}"
        with self.lock:
            for number in markers(text):
                self.counts[number][str(message["To"])] += 1
        return "250 Message accepted for delivery"


class SmtpServer:
    """The Mailbox on a fixed local port, which a scenario can take down and bring back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def set(self, *, up: bool, refusing: bool) -> None:
        self.mailbox.refusing = refusing
        if up and self._controller is None:
            self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
            self._controller.start()
        elif not up and self._controller is not None:
            self._controller.stop()
            self._controller = None


async def serve(slack_port: int, smtp_port: int, control_port: int, token: str) -> None:
    slack = StormSlack(token=token)
    slack.port = slack_port
    await slack.start()
    smtp = SmtpServer(smtp_port)
    smtp.set(up=True, refusing=False)

    async def storm(request: web.Request) -> web.Response:
        slack.storm(await request.json())
        return web.json_response({"ok": True})

    async def smtp_state(request: web.Request) -> web.Response:
        state = await request.json()
        await asyncio.to_thread(smtp.set, up=state["up"], refusing=state["refusing"])
        return web.json_response({"ok": True})

    async def counts(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "slack": {str(n): dict(c) for n, c in slack.counts.items()},
                "email": smtp.mailbox.snapshot(),
                "storm_answers": dict(slack.storm_answers),
                "smtp_refused": smtp.mailbox.refused,
                "history_calls": len(slack.of("conversations.history")),
            }
        )

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    routes = [
        web.post("/storm", storm),
        web.post("/smtp", smtp_state),
        web.get("/counts", counts),
        web.get("/healthz", health),
    ]
    control = await serve_local(control_port, routes)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await control.cleanup()
    await slack.stop()
    smtp.set(up=False, refusing=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="fakes.py")
    for name in ("--slack-port", "--smtp-port", "--control-port"):
        parser.add_argument(name, type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.slack_port, args.smtp_port, args.control_port, args.token))


if __name__ == "__main__":
    main()
