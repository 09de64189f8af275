"""The narrow, authenticated path to decrypted contact details, for the feedback service only.

Admitted: the feedback service's machine principal (a JWT with role `system` and subject
`feedback`, which it mints for itself from the shared key or is given) and admins; nobody else,
auditors included. Contact details are opened at the moment of asking and never cached; an
erased participant answers 410 Gone, so erasure makes sending impossible.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from contracts.fields import PARTICIPANT_ID_PATTERN
from eventcore.auth import Role, allow
from eventcore.http import problem_response
from services.intake.handlers import Intake

log = logging.getLogger(__name__)
router = APIRouter(prefix="/internal", include_in_schema=True, tags=["internal"])


CONTACT_READERS = allow(Role.ADMIN, services=("feedback",))


@router.get("/participants/{participant_id}/contact", responses={401: {}, 403: {}, 404: {}, 410: {}},
            dependencies=[Depends(CONTACT_READERS)])
async def read_contact(
    participant_id: Annotated[str, Path(pattern=PARTICIPANT_ID_PATTERN)], request: Request
) -> Any:
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
