"""The stack a bench runs on: databases, topics and processes, all on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

from eventcore.embedded import StackEndpoints
from eventcore.embedded.topics import create_topics
from golden_thread.demo.processes import ServiceProcess, free_port


async def create_database(endpoints: StackEndpoints, prefix: str = "bench") -> str:
    """A fresh database on the stack's server; returns its URL."""
    return await endpoints.new_database(prefix)


async def drop_database(endpoints: StackEndpoints, url: str) -> None:
    """Drop a database the bench is done with, so that the server's work on it (autovacuum on
    its tables, its dirty pages) does not land in a later phase's measurement."""
    name = urlparse(url).path.lstrip("/")
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def checkpoint(endpoints: StackEndpoints) -> str | None:
    """Flush the server's dirty pages now, between phases, rather than inside one; None, or
    why not (a configured server may not allow it)."""
    try:
        conn = await asyncpg.connect(endpoints.database_url)
        try:
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
    except (asyncpg.PostgresError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def new_topics(endpoints: StackEndpoints, names: Sequence[str], partitions: int = 3) -> None:
    await create_topics(endpoints.kafka_bootstrap_servers, list(names), partitions=partitions)


def stack_env(endpoints: StackEndpoints, database_url: str) -> dict[str, str]:
    return {
        **endpoints.as_env(),
        "GT_DATABASE_URL": database_url,
        # As the test suite does: a consumer that stops is out of its group quickly (Tansu never
        # sees a clean leave from generation 0).
        "GT_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "GT_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "GT_RELAY_POLL_INTERVAL_S": "0.2",
    }


def start_process(name: str, argv: list[str], env: dict[str, str], log_dir: Path,
                  port: int | None = None, cwd: Path | None = None) -> ServiceProcess:
    """`python ARGV` with `env` added; `cwd` is where it starts, and so, for `-m`, the first
    place it imports from (before PYTHONPATH and this environment's install)."""
    port = port or free_port()
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, *argv], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        cwd=cwd,
    )
    return ServiceProcess(name, port, process, log_path)


def start_service(name: str, env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """`golden-thread serve NAME` as its own process, as deployed."""
    port = free_port()
    return start_process(name, ["-m", "golden_thread", "serve", name, "--port", str(port)], env,
                         log_dir, port)


def start_worker(service: str, consumer_name: str, env: dict[str, str], log_dir: Path,
                 tag: str, cwd: Path | None = None) -> ServiceProcess:
    """The service's runtime (store, relay, consumer) without its HTTP API: see bench.worker."""
    return start_process(f"{tag}", ["-m", "golden_thread.bench.worker", service,
                                    "--consumer-name", consumer_name], env, log_dir, cwd=cwd)


@dataclass
class Processes:
    """Processes a phase started, stopped however the phase ends."""

    running: list[ServiceProcess]

    def stop_all(self) -> None:
        for proc in self.running:
            proc.stop(timeout_s=10.0)
        self.running.clear()

    def check_alive(self) -> None:
        for proc in self.running:
            if proc.process.poll() is not None:
                tail = proc.log_path.read_text(errors="replace").splitlines()[-20:]
                raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}):\n"
                                   + "\n".join(tail))


def kill_quietly(proc: ServiceProcess) -> None:
    if proc.process.poll() is None:
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait()


async def wait_for(check, what: str, timeout_s: float, interval_s: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval_s)


class CpuMeter:
    """CPU seconds (user + system) spent by named process trees between start() and stop():
    a per-item cost that CPU contention from other work on the machine does not distort."""

    def __init__(self, trees: dict[str, int | None], recursive: frozenset[str] = frozenset()
                 ) -> None:
        self.trees = {name: pid for name, pid in trees.items() if pid is not None}
        self.recursive = recursive
        self._before: dict[str, tuple[float, float]] = {}

    def _times(self, name: str, pid: int) -> tuple[float, float]:
        import psutil

        user = system = 0.0
        try:
            root = psutil.Process(pid)
            family = root.children(recursive=True) if name in self.recursive else []
            for proc in [root, *family]:
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                # With what its exited children spent (the kernel adds a child's times to its
                # parent's when it is reaped): PostgreSQL's backends come and go during a run,
                # and a tree summed over live processes only could even shrink (negative CPU).
                user += t.user + getattr(t, "children_user", 0.0)
                system += t.system + getattr(t, "children_system", 0.0)
        except psutil.Error:
            pass
        return user, system

    def start(self) -> None:
        self._before = {name: self._times(name, pid) for name, pid in self.trees.items()}

    def stop(self, items: int) -> dict[str, dict[str, float]]:
        """Milliseconds of CPU per item, user and system, for each tree."""
        out: dict[str, dict[str, float]] = {}
        for name, pid in self.trees.items():
            user, system = self._times(name, pid)
            u0, s0 = self._before.get(name, (0.0, 0.0))
            per = 1000 / max(items, 1)
            out[name] = {"user_ms": round((user - u0) * per, 3),
                         "system_ms": round((system - s0) * per, 3)}
        return out


def stack_pids(stack: object) -> dict[str, int | None]:
    """The broker's and PostgreSQL's pids, where this run started them."""
    import psutil

    found: dict[str, int | None] = {"postgres": None, "broker": None}
    child_pids = getattr(stack, "child_pids", None)
    for pid in child_pids() if child_pids else []:
        try:
            name = psutil.Process(pid).name()
        except psutil.Error:
            continue
        found["postgres" if "postgres" in name else "broker"] = pid
    return found
