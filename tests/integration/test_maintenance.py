"""rebuild refolds the same read models; republish re-sends stored events in order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts.topics import CONVERSATIONS, PARTICIPANTS
from eventcore.embedded import StackEndpoints
from eventcore.settings import CoreSettings
from golden_thread.maintenance import rebuild, republish
from tests.integration.intake_fixtures import RunningIntake, running_intake
from tests.integration.relay_reader import read_published
from tests.integration.test_intake_http import request

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


async def snapshot(intake: RunningIntake) -> dict[str, list[Any]]:
    assert intake.runtime.pool is not None
    async with intake.runtime.pool.acquire() as conn:
        return {
            "conversations": [dict(r) for r in await conn.fetch(
                "SELECT * FROM conversations ORDER BY conversation_id")],
            "participants": [dict(r) for r in await conn.fetch(
                "SELECT * FROM participants ORDER BY participant_id")],
        }


async def test_rebuild_yields_the_same_read_models_and_republish_resends_in_order(
    endpoints: StackEndpoints,
) -> None:
    async with running_intake(endpoints) as intake:
        pids = []
        for _ in range(4):
            pids.append((await intake.client.post("/conversations", json=request())).json()["participant_id"])
        await intake.client.post("/conversations", json=request(participant={"id": pids[0]}))
        await intake.client.post(f"/participants/{pids[1]}/erasure", json={"actor_id": "listener-1"})
        before = await snapshot(intake)
        settings = CoreSettings(database_url=intake.settings.database_url,
                                kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
                                kafka_enable_idempotence=endpoints.kafka_enable_idempotence)
        assert await rebuild("intake", settings) == 6
        after = await snapshot(intake)
        assert after == before and len(after["conversations"]) == 5

        assert intake.runtime.pool is not None
        async with intake.runtime.pool.acquire() as conn:
            stored = await intake.runtime.store.read_after(conn, 0, 100)
        ids = {e.event_id for e in stored}
        assert await republish("intake", settings, from_sequence=3) == 4
        copies = await read_published(endpoints, ids, topics=(CONVERSATIONS, PARTICIPANTS))
        per_sequence = {s: sum(1 for e in copies if e.sequence == s) for s in range(1, 7)}
        assert per_sequence == {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 2}


def test_rebuild_command_refuses_an_unknown_service_by_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "golden_thread", "rebuild", "astrology"], check=False, cwd=ROOT,
        env={**os.environ, "GT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "unknown service" in result.stderr
