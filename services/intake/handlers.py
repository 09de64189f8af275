"""Intake use cases: log a conversation, change consent, erase a participant.

Each is one transaction: vault rows, the new event (the store is the outbox) and the read models
commit together or not at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from contracts import (
    ActorRole,
    ConsentChanged,
    ConsentChangedEvent,
    ConversationLogged,
    ConversationLoggedEvent,
    ParticipantErased,
    ParticipantErasedEvent,
    new_event,
)
from eventcore.store import FIRST_FREE_PARAM, EventStore, Guard, GuardRefused, RecordedEvent
from services.intake.adapters.vault import ParticipantKey, Vault
from services.intake.config import SOURCE
from services.intake.domain.categories import CategorySet
from services.intake.domain.commands import ChangeConsent, EraseParticipant, LogConversation
from services.intake.domain.rules import RuleBroken, check_log_conversation
from services.intake.projections import (
    conversation_args,
    conversation_rows_after_append,
    project,
)


class Rejected(Exception):
    """The command breaks a rule; `status` is the HTTP status that says so."""

    def __init__(self, problems: list[RuleBroken], status: int = 422) -> None:
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in problems))
        self.problems = problems
        self.status = status


@dataclass(frozen=True)
class Accepted:
    subject: str
    participant_id: str
    event_id: UUID
    sequence: int


@dataclass(frozen=True)
class RequestContext:
    correlation_id: str
    traceparent: str | None = None


_EMAIL_NEEDED = RuleBroken("participant.contact.email",
                           "an email address is needed to send feedback by email")
_ERASED = RuleBroken("participant.id", "this participant has been erased")
_UNKNOWN = RuleBroken("participant.id", "unknown participant")
#: The guards of a returning participant's conversation: their rows locked in id order (before
#: the source head, as an erasure locks its participant's), those not erased let through; and,
#: for feedback by email with no address given, their contact row locked too, and let through if
#: it still holds an address (NULL: unchanged since before `has_email`, as read).
_LIVE = ("SELECT participant_id FROM participants WHERE participant_id = ANY($1::text[])"
         " AND NOT erased ORDER BY participant_id FOR UPDATE")
_LIVE_WITH_AN_ADDRESS = (
    "SELECT p.participant_id FROM participants p JOIN participant_contacts c USING (participant_id)"
    " WHERE p.participant_id = ANY($1::text[]) AND NOT p.erased AND c.has_email IS NOT FALSE"
    " ORDER BY p.participant_id FOR UPDATE OF p, c")


def new_participant_id() -> str:
    return "p_" + secrets.token_hex(8)


@dataclass
class Intake:
    pool: asyncpg.Pool
    store: EventStore
    vault: Vault
    categories: CategorySet
    today: Callable[[], date] = lambda: datetime.now(UTC).date()

    async def log_conversation(self, cmd: LogConversation, ctx: RequestContext) -> Accepted:
        problems = check_log_conversation(cmd, self.categories, self.today())
        if problems:
            raise Rejected(problems)
        given = cmd.participant.contact
        contact = None if given is None else given.model_dump(exclude_none=True)
        # An address given now is enough; a new participant without one was refused by the rules
        # (before any statement); a returning one may have one on record.
        email_needed = (cmd.consent.to_recontact and cmd.consent.channel == "email"
                        and not (given and given.email))
        if cmd.participant.id is None:
            return await self._log_first_conversation(cmd, ctx, contact)
        return await self._log_returning_conversation(cmd.participant.id, cmd, ctx, contact,
                                                      email_needed)

    async def _log_first_conversation(self, cmd: LogConversation, ctx: RequestContext,
                                      contact: dict[str, Any] | None) -> Accepted:
        """A new participant: their key and sealed contact, the event and both read models in
        one statement, which is its own transaction (one round trip; the source head is locked
        only while it runs)."""
        key, wrapped = self.vault.new_key(new_participant_id())
        draft = self._conversation_logged(cmd, ctx, key, "new")
        key_rows, key_args = self.vault.new_key_rows(FIRST_FREE_PARAM, key, wrapped, contact)
        read_models = conversation_rows_after_append(FIRST_FREE_PARAM + len(key_args))
        async with self.pool.acquire() as conn:
            recorded = await self.store.append_with(
                conn, draft, f"{key_rows},{read_models}",
                lambda body: [*key_args, *conversation_args(body)])
        return Accepted(draft.subject, key.participant_id, recorded.event_id, recorded.sequence)

    async def _log_returning_conversation(
        self, pid: str, cmd: LogConversation, ctx: RequestContext,
        contact: dict[str, Any] | None, email_needed: bool,
    ) -> Accepted:
        """A returning participant: their key read, then the event, their contact details if
        given anew and both read models in one statement, grouped with other callers' behind a
        guard that locks the participant's row before the source head and refuses the append
        if they were erased meanwhile, or, where feedback by email needs the address on record,
        if it no longer holds one (`eventcore.store.guarded`). An erasure or a consent change
        locks the row before the head too."""
        async with self.pool.acquire() as conn:
            key = await self._returning_key(conn, pid)
            if email_needed:  # no address given now: one must be on record
                found = None if contact is not None else await self.vault.read_contact(conn, pid)
                if not found or not found.get("email"):
                    raise await self._refusal(conn, pid)
            draft = self._conversation_logged(cmd, ctx, key, "returning")
            contact_rows, contact_args = ("", []) if contact is None else self.vault.contact_rows(
                FIRST_FREE_PARAM, key, contact)
            read_models = conversation_rows_after_append(FIRST_FREE_PARAM + len(contact_args))
            writes = f"{contact_rows},{read_models}" if contact_rows else read_models
            guard = Guard(_LIVE_WITH_AN_ADDRESS if email_needed else _LIVE, pid)
            try:
                recorded = await self.store.append_with(
                    conn, draft, writes, lambda body: [*contact_args, *conversation_args(body)],
                    guard=guard)
            except GuardRefused:
                raise await self._refusal(conn, pid) from None
        return Accepted(draft.subject, pid, recorded.event_id, recorded.sequence)

    @staticmethod
    async def _refusal(conn: asyncpg.Connection, pid: str) -> Rejected:
        """Why a returning participant's conversation cannot be logged: unknown, erased (both
        perhaps since their key was read), or no email address on record for email feedback."""
        row = await conn.fetchrow("SELECT erased FROM participants WHERE participant_id = $1", pid)
        if row is None:
            return Rejected([_UNKNOWN], 404)
        return Rejected([_ERASED], 409) if row["erased"] else Rejected([_EMAIL_NEEDED])

    def _conversation_logged(self, cmd: LogConversation, ctx: RequestContext,
                             key: ParticipantKey, status: str) -> Any:
        pid = key.participant_id
        conversation_id = uuid4()
        data = ConversationLogged(
            conversation_id=conversation_id, participant_id=pid, participant_status=status,
            listener_id=cmd.listener_id, held_on=cmd.held_on, setting=cmd.setting,
            place=cmd.place, categories=cmd.categories,
            categories_version=self.categories.version, summary=cmd.summary,
            quotes=tuple(key.seal(q) for q in cmd.quotes), support_shared=cmd.support_shared,
            consent=cmd.consent, equity=cmd.equity,
        )
        return new_event(
            ConversationLoggedEvent, data=data, source=SOURCE, subject=str(conversation_id),
            subjectversion=1, actorid=cmd.listener_id, actorrole=ActorRole.COMMUNITY_LISTENER,
            correlationid=ctx.correlation_id, traceparent=ctx.traceparent, causationids=(pid,),
        )

    async def _returning_key(self, conn: asyncpg.Connection, pid: str) -> ParticipantKey:
        """A returning participant's key (not locked: the append's guard checks that they were
        not erased since)."""
        row = await conn.fetchrow(
            "SELECT p.erased, k.key_id, k.wrapped_key FROM participants p"
            " LEFT JOIN participant_keys k USING (participant_id) WHERE p.participant_id = $1",
            pid,
        )
        if row is None:
            raise Rejected([_UNKNOWN], 404)
        key = None if row["erased"] or row["key_id"] is None else self.vault.unwrap(
            pid, row["key_id"], row["wrapped_key"])
        if key is None:
            raise Rejected([_ERASED], 409)
        return key

    async def change_consent(self, participant_id: str, cmd: ChangeConsent, ctx: RequestContext) -> Accepted:
        async with self.pool.acquire() as conn, conn.transaction():
            version = await self._live_participant_version(conn, participant_id)
            if cmd.consent.to_recontact and cmd.consent.channel == "email":
                contact = await self.vault.read_contact(conn, participant_id)
                if not contact or not contact.get("email"):
                    raise Rejected([RuleBroken("consent.channel",
                                               "no email address is held for this participant")])
            draft = new_event(
                ConsentChangedEvent,
                data=ConsentChanged(participant_id=participant_id, consent=cmd.consent),
                source=SOURCE, subject=participant_id, subjectversion=version + 1,
                actorid=cmd.actor_id, actorrole=ActorRole.COMMUNITY_LISTENER,
                correlationid=ctx.correlation_id, traceparent=ctx.traceparent,
            )
            recorded = await self._append(conn, draft)
        return Accepted(participant_id, participant_id, recorded.event_id, recorded.sequence)

    async def erase_participant(
        self, participant_id: str, cmd: EraseParticipant, ctx: RequestContext
    ) -> Accepted:
        async with self.pool.acquire() as conn, conn.transaction():
            version = await self._live_participant_version(conn, participant_id)
            await self.vault.destroy(conn, participant_id)
            draft = new_event(
                ParticipantErasedEvent,
                data=ParticipantErased(participant_id=participant_id, erased_on=self.today()),
                source=SOURCE, subject=participant_id, subjectversion=version + 1,
                actorid=cmd.actor_id, actorrole=ActorRole.COMMUNITY_LISTENER,
                correlationid=ctx.correlation_id, traceparent=ctx.traceparent,
            )
            recorded = await self._append(conn, draft)
        return Accepted(participant_id, participant_id, recorded.event_id, recorded.sequence)

    async def _live_participant_version(self, conn: asyncpg.Connection, pid: str) -> int:
        row = await self._lock_participant(conn, pid)
        if row is None:
            raise Rejected([RuleBroken("participant_id", "unknown participant")], 404)
        if row["erased"]:
            raise Rejected([RuleBroken("participant_id", "this participant has been erased")], 409)
        return int(row["version"])

    async def _lock_participant(self, conn: asyncpg.Connection, pid: str) -> Any:
        return await conn.fetchrow(
            "SELECT erased, version FROM participants WHERE participant_id = $1 FOR UPDATE", pid
        )

    async def _append(self, conn: asyncpg.Connection, draft: Any) -> RecordedEvent:
        [recorded] = await self.store.append(conn, [draft])
        await project(conn, recorded)
        return recorded
