"""Serve one service like `golden-thread serve`, with its consumers' poll interval bounded.

`python -m golden_thread.faults.serve SERVICE --port N`, with GT_FAULTS_MAX_POLL_INTERVAL_MS:
a handler slower than that makes the consumer leave its group mid-message, as a real one does
when processing outlasts `max.poll.interval.ms`. Only the fault lab starts services this way.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from faststream.kafka import KafkaBroker

from golden_thread.services import serve


def bound_poll_interval(max_poll_interval_ms: int) -> None:
    original = KafkaBroker.subscriber

    def subscriber(self: KafkaBroker, *topics: Any, **options: Any) -> Any:
        options.setdefault("max_poll_interval_ms", max_poll_interval_ms)
        return original(self, *topics, **options)

    KafkaBroker.subscriber = subscriber  # type: ignore[method-assign,assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("service")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if os.environ.get("GT_FAULTS_MAX_POLL_INTERVAL_MS"):
        bound_poll_interval(int(os.environ["GT_FAULTS_MAX_POLL_INTERVAL_MS"]))
    serve(args.service, "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
