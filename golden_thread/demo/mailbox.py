"""A real SMTP server on loopback that keeps what the feedback service sends (the demo's inbox)."""

from __future__ import annotations

import email
import threading
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Self

from aiosmtpd.controller import Controller

from golden_thread.demo.processes import free_port


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


class MailServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
