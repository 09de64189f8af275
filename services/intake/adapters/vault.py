"""The personal-data vault: one AES-256-GCM key per participant, wrapped by a master key.

Quotes and contact details are sealed with the participant's key; erasing a participant destroys
the key (crypto-shredding), so every copy of their sealed words, in events and tables alike,
becomes unreadable while the event log itself stays intact and verifiable.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts import Sealed
from eventcore.store import numbered_from

ALG = "AES-256-GCM"


class ParticipantErasedError(Exception):
    def __init__(self, participant_id: str) -> None:
        super().__init__("participant: this participant has been erased")
        self.participant_id = participant_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_master_key(text: str) -> bytes:
    key = _unb64(text.strip())
    if len(key) != 32:
        raise ValueError("vault_master_key: must be 32 bytes, base64url encoded")
    return key


def new_master_key() -> str:
    return _b64(secrets.token_bytes(32))


class ParticipantKey:
    """One participant's unwrapped key, held only for the length of a request."""

    def __init__(self, participant_id: str, key_id: str, key: bytes) -> None:
        self.participant_id = participant_id
        self.key_id = key_id
        self._aead = AESGCM(key)
        self._aad = f"{participant_id}:{key_id}".encode()

    def seal(self, plaintext: str) -> Sealed:
        nonce = os.urandom(12)
        ciphertext = self._aead.encrypt(nonce, plaintext.encode("utf-8"), self._aad)
        return Sealed(key_id=self.key_id, alg=ALG, nonce=_b64(nonce), ciphertext=_b64(ciphertext))

    def open(self, sealed: Sealed) -> str | None:
        if sealed.key_id != self.key_id:
            return None
        plain = self._aead.decrypt(_unb64(sealed.nonce), _unb64(sealed.ciphertext), self._aad)
        return plain.decode("utf-8")


def _sealed_contact(key: ParticipantKey, contact: dict[str, Any]) -> dict[str, Any]:
    return key.seal(json.dumps(contact, ensure_ascii=False)).model_dump(mode="json")


def _has_email(contact: dict[str, Any] | None) -> bool:
    """Kept beside the sealed details (`participant_contacts.has_email`): not personal data."""
    return bool(contact and contact.get("email"))


# $1 participant id, $2 key id, $3 wrapped key, $4 sealed contact (jsonb, or NULL: none given),
# $5 whether it holds an email address.
_NEW_KEY_ROWS = """
participant_key AS (
    INSERT INTO participant_keys (participant_id, key_id, wrapped_key)
    SELECT $1, $2, $3 FROM ins
    RETURNING participant_id
), participant_contact AS (
    INSERT INTO participant_contacts (participant_id, sealed, has_email)
    SELECT participant_id, $4::jsonb, $5 FROM participant_key WHERE $4::jsonb IS NOT NULL
)"""


# $1 participant id, $2 sealed contact (jsonb), $3 whether it holds an email address: a
# returning participant's contact given anew.
_CONTACT_ROWS = """
participant_contact AS (
    INSERT INTO participant_contacts (participant_id, sealed, has_email)
    SELECT $1, $2::jsonb, $3 FROM ins
    ON CONFLICT (participant_id) DO UPDATE
       SET sealed = EXCLUDED.sealed, has_email = EXCLUDED.has_email, updated_at = now()
)"""


class Vault:
    def __init__(self, master_key: bytes) -> None:
        self._master = AESGCM(master_key)

    def new_key(self, participant_id: str) -> tuple[ParticipantKey, bytes]:
        """A new participant's key, and its stored form (wrapped by the master key)."""
        key_id, key, nonce = f"k_{secrets.token_hex(8)}", os.urandom(32), os.urandom(12)
        wrapped = nonce + self._master.encrypt(nonce, key, participant_id.encode())
        return ParticipantKey(participant_id, key_id, key), wrapped

    @staticmethod
    def new_key_rows(first: int, key: ParticipantKey, wrapped: bytes,
                     contact: dict[str, Any] | None) -> tuple[str, list[Any]]:
        """The key row and the sealed contact row as writes on the append of the participant's
        first event (`EventStore.append_with`: they land with it or not at all), parameters
        numbered from `first`, and their values."""
        sealed = None if contact is None else _sealed_contact(key, contact)
        return (numbered_from(first, _NEW_KEY_ROWS),
                [key.participant_id, key.key_id, wrapped, sealed, _has_email(contact)])

    @staticmethod
    def contact_rows(first: int, key: ParticipantKey, contact: dict[str, Any]
                     ) -> tuple[str, list[Any]]:
        """A returning participant's contact details, sealed, as a write on the append of their
        conversation (`EventStore.append_with`), parameters numbered from `first`, and their
        values."""
        return (numbered_from(first, _CONTACT_ROWS),
                [key.participant_id, _sealed_contact(key, contact), _has_email(contact)])

    def unwrap(self, participant_id: str, key_id: str, wrapped: bytes | None) -> ParticipantKey | None:
        """The participant's key from its stored row, or None once it has been destroyed."""
        if wrapped is None:
            return None
        key = self._master.decrypt(wrapped[:12], wrapped[12:], participant_id.encode())
        return ParticipantKey(participant_id, key_id, key)

    async def key(self, conn: asyncpg.Connection, participant_id: str) -> ParticipantKey | None:
        """The participant's key, or None once it has been destroyed (or never existed)."""
        row = await conn.fetchrow(
            "SELECT key_id, wrapped_key FROM participant_keys WHERE participant_id = $1",
            participant_id,
        )
        if row is None:
            return None
        return self.unwrap(participant_id, row["key_id"], row["wrapped_key"])

    async def seal(self, conn: asyncpg.Connection, participant_id: str, plaintext: str) -> Sealed:
        found = await self.key(conn, participant_id)
        if found is None:
            raise ParticipantErasedError(participant_id)
        return found.seal(plaintext)

    async def open(self, conn: asyncpg.Connection, participant_id: str, sealed: Sealed) -> str | None:
        """The plaintext, or None when the participant's key has been destroyed."""
        found = await self.key(conn, participant_id)
        return None if found is None else found.open(sealed)

    async def read_contact(
        self, conn: asyncpg.Connection, participant_id: str
    ) -> dict[str, Any] | None:
        row = await conn.fetchrow(
            "SELECT c.sealed, k.key_id, k.wrapped_key FROM participant_contacts c"
            " JOIN participant_keys k USING (participant_id) WHERE c.participant_id = $1",
            participant_id,
        )
        if row is None:
            return None
        key = self.unwrap(participant_id, row["key_id"], row["wrapped_key"])
        plain = None if key is None else key.open(Sealed.model_validate(row["sealed"]))
        return None if plain is None else dict(json.loads(plain))

    async def destroy(self, conn: asyncpg.Connection, participant_id: str) -> None:
        """Crypto-shred: drop the key and the sealed contact details."""
        await conn.execute(
            "UPDATE participant_keys SET wrapped_key = NULL, erased_at = now()"
            " WHERE participant_id = $1",
            participant_id,
        )
        await conn.execute("DELETE FROM participant_contacts WHERE participant_id = $1", participant_id)
