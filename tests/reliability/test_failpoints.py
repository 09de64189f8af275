"""Failpoints: off by default; armed by GT_FAILPOINTS (or a file), they kill, raise or stall."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventcore import failpoints
from eventcore.failpoints import FailpointError, configure, hit, hit_async, parse


@pytest.fixture(autouse=True)
def disarmed() -> object:
    yield
    configure("")
    failpoints._registry.file = None


def test_grammar_names_probability_or_nth_hit_and_an_action() -> None:
    points = parse("relay.after_ack:0.2, consumer.handler:3:sleep=1.5,x:1:raise")
    assert (points["relay.after_ack"].probability, points["relay.after_ack"].action) == (0.2, "kill")
    assert (points["consumer.handler"].nth, points["consumer.handler"].seconds) == (3, 1.5)
    assert points["x"].action == "raise"
    for bad in ("nameonly", "a:1:explode", "a:often"):
        with pytest.raises(ValueError):
            parse(bad)


def test_nth_hit_fires_once_on_that_hit_and_unarmed_points_never_fire() -> None:
    configure("p:2:raise")
    hit("p")
    with pytest.raises(FailpointError):
        hit("p")
    hit("p")
    hit("another")  # not armed


def test_probability_one_always_fires_and_zero_never() -> None:
    configure("always:1.0:raise,never:0.0:raise")
    for _ in range(20):
        hit("never")
        with pytest.raises(FailpointError):
            hit("always")


async def test_a_stall_sleeps_without_blocking_the_loop() -> None:
    configure("slow:1:sleep=0.2")
    started = time.monotonic()
    await hit_async("slow")
    assert time.monotonic() - started >= 0.2


def test_a_file_arms_and_disarms_a_running_process(tmp_path: Path) -> None:
    armed = tmp_path / "failpoints.txt"
    failpoints._registry.file = str(armed)
    armed.write_text("f:1.0:raise")
    time.sleep(0.06)
    with pytest.raises(FailpointError):
        hit("f")
    armed.write_text("")
    time.sleep(0.06)
    hit("f")


def test_kill_is_a_kill_9_of_the_process_itself() -> None:
    code = "from eventcore.failpoints import hit; hit('x'); hit('x'); print('survived')"
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          env={**os.environ, "GT_FAILPOINTS": "x:2"}, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert "survived" not in done.stdout
    assert "failpoint x: kill (hit 2)" in done.stderr
