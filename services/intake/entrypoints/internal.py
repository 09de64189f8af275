"""The narrow, authenticated path to decrypted contact details, for the feedback service only.

Contact details are opened at the moment of asking and never cached; an erased participant
answers 410 Gone, so erasure makes sending impossible.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from eventcore.http import problem_response
from services.intake.handlers import Intake

log = logging.getLogger(__name__)
router = APIRouter(prefix="/internal", include_in_schema=True, tags=["internal"])


def _authorised(request: Request) -> bool:
    tokens: tuple[str, ...] = request.app.state.contact_reader_tokens
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens)


@router.get("/participants/{participant_id}/contact", responses={401: {}, 404: {}, 410: {}})
async def read_contact(participant_id: str, request: Request) -> Any:
    if not _authorised(request):
        return problem_response(401, "unauthorised", [("authorization", "a valid bearer token is required")])
    intake: Intake = request.app.state.intake
    async with intake.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT erased, consent FROM participants WHERE participant_id = $1", participant_id
        )
        if row is None:
            return problem_response(404, "not_found", [("participant_id", "unknown participant")])
        if row["erased"]:
            return problem_response(410, "erased", [("participant_id", "this participant has been erased")])
        contact = await intake.vault.read_contact(conn, participant_id) or {}
    log.info("contact details opened for %s", participant_id)
    return JSONResponse({
        "participant_id": participant_id,
        "name": contact.get("name"),
        "email": contact.get("email"),
        "phone": contact.get("phone"),
        "consent": row["consent"],
    }, headers={"cache-control": "no-store"})
