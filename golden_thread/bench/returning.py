"""Intake with returning participants beside new ones, in turn, on the embedded stack.

    python -m golden_thread.bench.returning [--seconds 8] [--rounds 3] [--participants 2000]

The bench's intake figure logs every conversation for a new participant; a listener's regulars
come back. This starts intake as the bench does (`golden-thread serve intake`, its relay
running), logs `--participants` new ones, then in each round drives it for `--seconds` with 8
keep-alive clients, first with new participants, then with the returning ones (no contact given;
their key is read, for feedback by email their address on record too, and the append is guarded,
`eventcore/store/guarded.py`).
Printed per round: conversations per second and the CPU milliseconds per conversation of intake,
PostgreSQL and the broker; then each kind's median and the ratio of returning to new. Run it in
another checkout (its directory as the working directory) to measure that checkout's intake.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from contracts.topics import ALL_TOPICS
from eventcore.embedded import EmbeddedStack
from eventcore.settings import CoreSettings
from eventcore.tokens import mint_token
from golden_thread.bench import http_load
from golden_thread.bench.ab import median
from golden_thread.bench.infra import CpuMeter, stack_env, stack_pids
from golden_thread.demo.processes import start_service
from golden_thread.demo.scenario import conversation_request, people
from services.intake.adapters.vault import new_master_key

CLIENTS = 8


def bodies(returning: list[str] | None, seed: int = 7) -> Iterator[tuple[str, bytes]]:
    """(listener id, POST /conversations body): a new participant each, or the `returning`
    ones in turn (no contact given; consent as the demo's listeners ask it)."""
    rng = random.Random(seed)
    crowd, today, n = people(rng, 512), datetime.now(UTC).date(), 0
    while True:
        body = conversation_request(rng, crowd[n % len(crowd)], today)
        if returning is not None:
            body["participant"] = {"id": returning[n % len(returning)]}
        n += 1
        yield body["listener_id"], json.dumps(body, separators=(",", ":")).encode()


async def run(seconds: float, rounds: int, participants: int) -> dict[str, list[float]]:
    work = Path(tempfile.mkdtemp(prefix="gt-returning-"))
    rates: dict[str, list[float]] = {"new": [], "returning": []}
    try:
        stack = EmbeddedStack(CoreSettings(), topics=ALL_TOPICS, work_dir=work / "stack")
        async with stack as ep:
            secret = secrets.token_urlsafe(32)
            env = {**stack_env(ep, await ep.new_database("bench_returning")),
                   "GT_INTAKE_VAULT_MASTER_KEY": new_master_key(),
                   "GT_INTAKE_CONTACT_READER_TOKENS": secrets.token_urlsafe(24),
                   "GT_AUTH_JWT_SECRET": secret}
            intake = start_service("intake", env, work)
            try:
                await intake.wait_ready(60)
                tokens: dict[str, str] = {}

                def authorize(listener: str) -> str:
                    if listener not in tokens:
                        token = mint_token(secret, "community_listener", listener, ttl_s=3600)
                        tokens[listener] = f"Authorization: Bearer {token}\r\n"
                    return tokens[listener]

                pids = await _new_participants(intake.url, participants, authorize)
                for n in range(rounds):
                    for kind, who in (("new", None), ("returning", pids)):
                        meter = CpuMeter({**stack_pids(stack), "intake": intake.process.pid},
                                         recursive=frozenset({"postgres"}))
                        meter.start()
                        results, took = await http_load.drive(
                            intake.url, bodies(who, seed=n), clients=CLIENTS, seconds=seconds,
                            warmup_s=1.0, authorize=authorize)
                        cpu = meter.stop(results.accepted)
                        if results.rejected or not results.accepted:
                            raise RuntimeError(f"{kind}: {results.rejected} refused, first "
                                               f"{results.first_error}")
                        rates[kind].append(results.accepted / took)
                        per = ", ".join(f"{tree} {v['user_ms'] + v['system_ms']:.3f}"
                                        for tree, v in cpu.items())
                        print(f"ROUND {n + 1} {kind}: {rates[kind][-1]:,.0f} conv/s; CPU ms per "
                              f"conversation: {per}", flush=True)
            finally:
                intake.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rates


async def _new_participants(url: str, count: int, authorize: http_load.Authorize) -> list[str]:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http_load.Connection(host, int(port))
    await conn.open()
    try:
        pids: list[str] = []
        made = bodies(None, seed=99)
        while len(pids) < count:
            listener, body = next(made)
            status, answer = await conn.post(body, authorize(listener))
            if status != 201:
                raise RuntimeError(f"a new participant was refused: {status} {answer[:200]!r}")
            if json.loads(body)["participant"]["contact"].get("email"):  # (the demo's all have)
                pids.append(json.loads(answer)["participant_id"])
        return pids
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--participants", type=int, default=2_000)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.participants < 1:
        parser.error("give --seconds above 0, --rounds and --participants of 1 or more")
    rates = uvloop.run(run(args.seconds, args.rounds, args.participants))
    for kind, values in rates.items():
        print(f"SUMMARY {kind}: median {median(values):,.0f} conv/s of rounds "
              + " / ".join(f"{v:,.0f}" for v in values))
    print(f"RATIO returning / new: {median(rates['returning']) / median(rates['new']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
