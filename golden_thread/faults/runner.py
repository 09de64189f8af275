"""Running one scenario: load over HTTP, a fault injected meanwhile, then wait until every
service's effects match a fault-free run (or time runs out) and count what was lost or doubled.

Time to recover is measured from the last disturbance (the last fault, the last process death
or the end of the load, whichever came last) until no expected effect is missing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from golden_thread.faults.effects import Effects, heads, measure
from golden_thread.faults.lab import Lab
from golden_thread.faults.load import Ledger, Load
from golden_thread.faults.tokens import Bearer


@dataclass(frozen=True)
class Plan:
    load_s: float = 15.0
    rate_per_s: float = 5.0
    settle_timeout_s: float = 120.0
    kills_each: int = 2  # kills per service in the random-moments scenario


QUICK = Plan(load_s=5.0, rate_per_s=4.0, settle_timeout_s=75.0, kills_each=1)
FULL = Plan()


@dataclass
class Trial:
    """What a fault sees: the lab, the plan, and a note of when it last disturbed anything."""

    lab: Lab
    plan: Plan
    load: asyncio.Task[Ledger] | None = None
    disturbed_at: float = 0.0
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # failed scenario-specific checks
    kills: int = 0  # processes killed by failpoints
    poison: dict[str, str] = field(default_factory=dict)
    poisoned_at: float = 0.0

    def disturbed(self) -> None:
        self.disturbed_at = time.monotonic()

    async def during_load(self, fraction: float) -> None:
        """Sleep until `fraction` of the load's duration has passed (from the trial's start)."""
        await asyncio.sleep(self.plan.load_s * fraction)


Step = Callable[[Trial], Awaitable[None]]


async def nothing(trial: Trial) -> None:
    return None


@dataclass(frozen=True)
class Scenario:
    """`prepare` runs before the load, `fault` while it runs, `aftercare` once it has ended."""

    name: str
    fault: Step
    prepare: Step = nothing
    aftercare: Step = nothing


@dataclass
class Result:
    scenario: str
    sent: int
    expected: int
    seen: int
    lost: int
    duplicated: int
    recovery_s: float | None
    kills: int = 0
    details: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated and not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "sent": self.sent, "expected": self.expected,
                "seen": self.seen, "lost": self.lost, "duplicated": self.duplicated,
                "recovery_s": self.recovery_s, "kills": self.kills, "ok": self.ok, "details": self.details,
                "problems": self.problems, "notes": self.notes}


async def run_scenario(lab: Lab, scenario: Scenario, plan: Plan) -> Result:
    name = scenario.name
    await lab.wait_all_ready()
    start = await heads(lab)
    trial = Trial(lab, plan)
    await scenario.prepare(trial)
    load = Load(lab.urls(), Bearer(lab.env), f"{name}-{secrets.token_hex(3)}",
                rate_per_s=plan.rate_per_s)
    trial.load = asyncio.create_task(load.run(plan.load_s))
    try:
        await scenario.fault(trial)
        ledger = await trial.load
    finally:
        lab.services.disarm_all()
    load_end = time.monotonic()
    await scenario.aftercare(trial)
    disturbed = max(trial.disturbed_at, lab.services.last_death, load_end)
    effects, recovered = await settle(lab, start, ledger, plan.settle_timeout_s)
    recovery = None if recovered is None else round(max(recovered - disturbed, 0.0), 1)
    notes = [*trial.notes, (f"load: {ledger.threads_done} threads done, {ledger.threads_dropped}"
                            f" dropped, {ledger.ambiguous} requests with unknown outcome")]
    notes += [f"refused: {r}" for r in ledger.refused[:3]]
    if recovery is None:
        from golden_thread.faults.diagnose import diagnose

        notes.append(f"not recovered within {plan.settle_timeout_s:.0f}s")
        notes += await diagnose(lab, effects)
    return Result(
        scenario=name, sent=ledger.sent, expected=effects.total("expected"),
        seen=effects.total("seen"), lost=effects.total("expected") - effects.total("seen"),
        duplicated=effects.total("duplicated"), recovery_s=recovery, kills=trial.kills,
        details={k: {"expected": t.expected, "seen": t.seen, "lost": t.lost,
                     "duplicated": t.duplicated, "unexpected": t.unexpected}
                 for k, t in effects.by_kind.items()},
        problems=effects.problems() + trial.checks + _crashes(lab),
        notes=notes + [e for t in effects.by_kind.values() for e in t.examples][:6])


async def settle(lab: Lab, start: dict[str, int], ledger: Ledger,
                 timeout_s: float) -> tuple[Effects, float | None]:
    """Measure until nothing expected is missing; then once more, a moment later, so that a
    late repeat is counted too. Returns the effects and when they were complete."""
    deadline = time.monotonic() + timeout_s
    while True:
        effects = await measure(lab, start, ledger)
        if effects.total("expected") == effects.total("seen"):
            complete = time.monotonic()
            await asyncio.sleep(0.5)
            return await measure(lab, start, ledger), complete
        if time.monotonic() > deadline:
            return effects, None
        await asyncio.sleep(0.5)


def _crashes(lab: Lab) -> list[str]:
    """Exits nobody caused (not our kill -9): a service that crashed on its own is a finding."""
    found = []
    for instance in lab.services.instances.values():
        if instance.deaths:
            found.append(f"{instance.name} exited by itself with {instance.deaths}; "
                         f"see {instance.log_path}")
            instance.deaths.clear()
    return found
