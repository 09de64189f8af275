"""The services as separate processes, under a supervisor that restarts whatever dies.

Each process reads its failpoints from its own file (GT_FAILPOINTS_FILE), so a scenario arms
and disarms running processes. A process armed with a kill budget is disarmed once it has died
that many times, so load always gets through in the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from golden_thread.demo.processes import free_port

SERVICES = ("intake", "insight", "priority", "feedback")


@dataclass
class Instance:
    """One service process (restarted on the same port), with its failpoints file."""

    name: str  # "insight" or "insight#2"
    service: str
    port: int
    argv: list[str]
    env: dict[str, str]
    work: Path
    process: subprocess.Popen[bytes] | None = None
    supervised: bool = True
    kills_left: int = 0
    killed: int = 0  # times it died by kill -9
    deaths: list[int] = field(default_factory=list)  # exit codes of unplanned exits

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def failpoints_file(self) -> Path:
        return self.work / f"failpoints-{self.name.replace('#', '-')}.txt"

    @property
    def log_path(self) -> Path:
        return self.work / f"{self.name.replace('#', '-')}.log"

    def start(self, why: str = "started") -> None:
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} fault lab: {self.name} {why}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, "GT_FAILPOINTS_FILE": str(self.failpoints_file)})

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def arm(self, failpoints: str, kills: int = 1) -> None:
        self.kills_left = kills
        self.failpoints_file.write_text(failpoints)

    def disarm(self) -> None:
        self.kills_left = 0
        self.failpoints_file.write_text("")

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()

    async def stop(self, timeout_s: float = 15.0) -> int | None:
        self.supervised = False
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return proc.returncode

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/health/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s; see {self.log_path}")


class Fleet:
    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env = env
        self.work = work
        self.instances: dict[str, Instance] = {}
        self.last_death = 0.0  # monotonic time of the latest death the supervisor saw
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, service: str, *, name: str | None = None, extra_env: dict[str, str] | None = None,
            entry: str = "golden_thread", port: int | None = None) -> Instance:
        port = port or free_port()
        args = ["serve", service] if entry == "golden_thread" else [service]
        argv = [sys.executable, "-m", entry, *args, "--port", str(port)]
        instance = Instance(name or service, service, port, argv,
                            {**self.env, **(extra_env or {})}, self.work)
        instance.disarm()
        self.instances[instance.name] = instance
        instance.start()
        return instance

    def __getitem__(self, name: str) -> Instance:
        return self.instances[name]

    def urls(self) -> dict[str, str]:
        return {s: self.instances[s].url for s in SERVICES}

    def supervise(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="fleet-supervisor")

    async def _watch(self) -> None:
        while True:
            for instance in list(self.instances.values()):
                if instance.supervised and instance.process is not None and not instance.alive():
                    self._restart(instance)
            await asyncio.sleep(0.1)

    def _restart(self, instance: Instance) -> None:
        assert instance.process is not None
        code = instance.process.returncode
        self.last_death = time.monotonic()
        if code == -signal.SIGKILL:
            instance.killed += 1
        else:
            instance.deaths.append(code)
        instance.kills_left -= 1
        if instance.kills_left <= 0:
            instance.disarm()
        instance.start(f"restarted after exit code {code}")
        self.restarts += 1

    def disarm_all(self) -> None:
        for instance in self.instances.values():
            instance.disarm()

    async def remove(self, name: str) -> int | None:
        code = await self.instances[name].stop()
        del self.instances[name]
        return code

    async def close(self) -> dict[str, int | None]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        names = list(self.instances)
        codes = await asyncio.gather(*(self.instances[n].stop() for n in names))
        return dict(zip(names, codes, strict=True))
