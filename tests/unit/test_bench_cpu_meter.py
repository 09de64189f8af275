"""The bench's CPU meter counts what a process tree spent, children that came and went included."""

from __future__ import annotations

import subprocess
import sys
import time

from golden_thread.bench.infra import CpuMeter

# A parent that waits, then starts a child that burns CPU and exits (and is reaped).
_PARENT = """
import subprocess, sys, time
sys.stdin.readline()
subprocess.run([sys.executable, "-c",
                "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.3: pass"])
print("done", flush=True)
sys.stdin.readline()
"""


def test_a_child_that_exited_during_the_measurement_is_counted_never_negative() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the parent's own start-up is before the measurement
        meter = CpuMeter({"tree": parent.pid}, recursive=frozenset({"tree"}))
        meter.start()
        assert parent.stdin is not None and parent.stdout is not None
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "done"
        spent = meter.stop(1)["tree"]
        assert spent["user_ms"] + spent["system_ms"] >= 250, spent  # the child's 0.3 s
        assert spent["user_ms"] >= 0 and spent["system_ms"] >= 0
    finally:
        parent.kill()
        parent.wait()
