"""When a test runs long, write where every asyncio task is waiting (its whole await chain, not
just the top frame `Task.print_stack` gives) and every thread's stack, to stderr and to a file.

pytest-timeout's own dump shows the threads only, and an event loop idle in `select` says nothing
about which await never finishes. This fires before the timeout, so the run still fails as it
would; it only leaves the evidence behind (`GT_HANG_DUMP_DIR`, default the system temp dir).
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from eventcore.errors import waiting_at

#: Seconds a test may run before its tasks are dumped (the suite's timeout is 300 s).
DUMP_AFTER_S = float(os.environ.get("GT_HANG_DUMP_AFTER_S", "120"))


def describe_tasks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    tasks = asyncio.all_tasks(loop)
    out.write(f"--- {len(tasks)} asyncio tasks ---\n")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"\nTask {task.get_name()} {task!r:.200}\n  waits at {waiting_at(task)}\n")
    return out.getvalue()


class HangWatch:
    """Arms a timer per test; the loop it reports on is the session's, set by tests/conftest.py."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: threading.Timer | None = None

    def arm(self, test_id: str) -> None:
        self.disarm()
        self._timer = threading.Timer(DUMP_AFTER_S, self._dump, args=(test_id,))
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _dump(self, test_id: str) -> None:
        path = Path(os.environ.get("GT_HANG_DUMP_DIR", tempfile.gettempdir())) / (
            f"gt-hang-{os.getpid()}-{int(time.time())}.txt")
        header = f"=== {test_id} still running after {DUMP_AFTER_S:.0f} s; dump in {path}\n"
        with open(path, "w") as file:
            file.write(header)
            file.flush()
            faulthandler.dump_traceback(file=file, all_threads=True)
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            # A sync test (or fixture) is what runs: its stack is in the thread dump above.
            with open(path, "a") as file:
                file.write("--- the event loop is not running: synchronous code is what waits\n")
        else:
            done, late = threading.Event(), threading.Event()

            def on_loop() -> None:
                try:
                    if not late.is_set():  # not a dump from another moment, appended later
                        with open(path, "a") as file:
                            file.write(describe_tasks(loop))
                finally:
                    done.set()

            try:
                loop.call_soon_threadsafe(on_loop)
            except RuntimeError:  # closed in the meantime
                done.set()
            if not done.wait(10):
                late.set()
                with open(path, "a") as file:
                    file.write("--- the event loop did not run the dump within 10 s: it is "
                               "blocked\n")
        stream = sys.__stderr__
        if stream is not None:
            stream.write(header + path.read_text())
            stream.flush()
