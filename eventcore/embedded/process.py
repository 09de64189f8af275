"""Child processes for the embedded stack: spawned so that they die with us, logged to files."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 30


class StackStartError(RuntimeError):
    """A broker or database of the embedded stack did not start."""


class StackControlError(RuntimeError):
    """A fault-injection call asked for a process this stack did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now; the small race until the child binds it is accepted."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child after setuid (a uid change would clear the setting), before exec:
    # if the test run or CLI is killed outright, the kernel kills the child too.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass(frozen=True)
class RunAs:
    """An unprivileged system user to run a child as (PostgreSQL refuses to run as root)."""

    uid: int
    gid: int


def tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def run_to_completion(
    argv: Sequence[str], *, log_path: Path, run_as: RunAs | None, what: str, cwd: Path
) -> None:
    """Run a short-lived helper (initdb), appending its output to `log_path`."""
    with open(log_path, "ab") as log:
        completed = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            cwd=cwd,
            **_spawn_options(run_as),  # type: ignore[call-overload]
        )
    if completed.returncode != 0:
        raise StackStartError(
            f"{what} failed with exit code {completed.returncode}; "
            f"last lines of {log_path}:\n{tail(log_path)}"
        )


def _spawn_options(run_as: RunAs | None) -> dict[str, object]:
    options: dict[str, object] = {}
    if sys.platform == "linux":
        options["preexec_fn"] = _die_with_parent
        # Own process group: a terminal Ctrl-C reaches only us, and we stop children in order.
        options["process_group"] = 0
    if run_as is not None:
        options.update(user=run_as.uid, group=run_as.gid, extra_groups=[])
    return options


class ChildProcess:
    """One long-running child (broker or postmaster) with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        run_as: RunAs | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.cwd = log_path.parent  # a directory the (possibly unprivileged) child can enter
        self.argv = list(argv)
        self.log_path = log_path
        self.run_as = run_as
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            # Popen is called on the event loop's thread on purpose: the death signal fires
            # when the *thread* that forked the child ends, so a worker thread would be wrong.
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                **_spawn_options(self.run_as),  # type: ignore[call-overload]
            )

    async def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> int | None:
        """Send `sig`, wait up to `timeout_s`, then SIGKILL. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            if not await _wait_exit(proc, timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await _wait_exit(proc, 5.0)
        return proc.returncode

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL, timeout_s=5.0)

    def failure(self, problem: str) -> StackStartError:
        code = self._proc.poll() if self._proc is not None else None
        status = f" (exit code {code})" if code is not None else ""
        return StackStartError(
            f"{self.name} {problem}{status}; last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    async def wait_ready(self, is_ready: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
        """Poll `is_ready` until true; fail early, with the log, if the child exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.running:
                raise self.failure("exited before it was ready")
            if await is_ready():
                return
            if time.monotonic() > deadline:
                raise self.failure(f"was not ready after {timeout_s:.0f} s")
            await asyncio.sleep(0.05)


async def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def listens_on(pid: int | None, port: int) -> bool:
    """True once `pid` itself holds a listening socket on `port`; a mere connect could reach
    whatever else took the port in the race after free_port()."""
    if pid is None:
        return False
    try:
        sockets = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets)


async def port_accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (TimeoutError, OSError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
