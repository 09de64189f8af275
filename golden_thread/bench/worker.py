"""A service's runtime (pool, store, relay, consumer) as its own process, without its HTTP API.

`python -m golden_thread.bench.worker insight --consumer-name insight-x2` runs exactly what
`golden-thread serve insight` runs on the consuming side, under another consumer name (so a
fresh consumer group and inbox name: each measurement reads the topics from the beginning).
Stops cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from pathlib import Path

import uvloop

from eventcore.logs import configure_logging
from eventcore.runtime import ServiceRuntime


def build(service: str) -> ServiceRuntime:
    if service == "insight":
        from services.insight.bootstrap import build_runtime as insight
        from services.insight.config import InsightSettings

        return insight(InsightSettings())
    if service == "priority":
        from services.priority.bootstrap import build_runtime as priority
        from services.priority.config import PrioritySettings

        return priority(PrioritySettings())
    if service == "feedback":
        from services.feedback.bootstrap import build_runtime as feedback
        from services.feedback.config import FeedbackSettings

        return feedback(FeedbackSettings())
    raise SystemExit(f"unknown consuming service {service!r}")


async def run(service: str, consumer_name: str | None) -> None:
    runtime = build(service)
    if consumer_name:
        runtime.subscriptions = [dataclasses.replace(s, consumer_name=consumer_name)
                                 for s in runtime.subscriptions]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await runtime.start()
    print(f"started, code in {checkout()}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runtime.stop()


def checkout() -> str:
    """Where this process's packages come from (bench.ab checks that each mode ran its own):
    one checkout, or each package's if they differ."""
    import contracts
    import eventcore
    import golden_thread
    import services

    roots = {p.__name__: Path(p.__file__ or "").parent.parent.resolve()
             for p in (contracts, eventcore, services, golden_thread)}
    if len(set(roots.values())) == 1:
        return str(roots["eventcore"])
    return "mixed: " + ", ".join(f"{name} from {root}" for name, root in roots.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("service", choices=("insight", "priority", "feedback"))
    parser.add_argument("--consumer-name", default=None)
    args = parser.parse_args(argv)
    configure_logging(f"bench-{args.service}")
    # uvloop, as `golden-thread serve` runs the same runtime (docs/performance.md finding 8).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(args.service, args.consumer_name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
