"""Sending email over SMTP (the standard library's client, in a worker thread)."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol


@dataclass(frozen=True, repr=False)
class OutgoingEmail:
    """One message in memory; the address is never stored or logged."""

    to: str
    subject: str
    body: str
    message_id: str

    def __repr__(self) -> str:
        return f"OutgoingEmail({self.message_id}, <recipient hidden>)"


class MailRejected(Exception):
    """The mail server refused this message for good (e.g. a 5xx on the recipient)."""


class MailUnavailable(Exception):
    """The mail server could not take it now; try again later."""


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0

    async def send(self, email: OutgoingEmail) -> None:
        await asyncio.to_thread(self._send, email)

    def _send(self, email: OutgoingEmail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        # Stable across retries, so a resend after a crash can be recognised as the same one.
        message["Message-ID"] = email.message_id
        message.set_content(email.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username and self.password:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise MailRejected("recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise MailRejected(f"refused with {exc.smtp_code}") from None
            raise MailUnavailable(f"deferred with {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(type(exc).__name__) from None
