"""Run Tandem's real service processes against the session's broker and database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tandem_shared.local.embedded import free_port

BIN = Path(sys.executable).parent


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class Stack:
    """Service processes sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def migrate(self, name: str) -> None:
        subprocess.run(
            [str(BIN / f"tandem-{name}"), "migrate"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self, name: str, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        port = free_port()
        log = self.log_dir / f"{name}-{port}.log"
        proc = subprocess.Popen(
            [str(BIN / f"tandem-{name}"), "serve"],
            env={**self.env, "TANDEM_HTTP__PORT": str(port), **(extra_env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        service = ServiceProcess(name, port, proc, log)
        self.processes.append(service)
        return service

    async def wait_healthy(self, service: ServiceProcess, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(f"{service.name} exited:\n{service.log.read_text()[-3000:]}")
            if await asyncio.to_thread(_ok, f"{service.url}/healthz"):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{service.name} not healthy:\n{service.log.read_text()[-3000:]}")

    def stop_all(self) -> None:
        for service in reversed(self.processes):
            service.stop()


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def stack_env(*, bootstrap: str, database_url: str, config_dir: Path) -> dict[str, str]:
    """Environment of services under test: the session's infra, short group timings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env.update(
        {
            "TANDEM_ENV": "test",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "TANDEM_CONFIG_DIR": str(config_dir),
            "TANDEM_KAFKA__SESSION_TIMEOUT_MS": "3000",
            "TANDEM_KAFKA__HEARTBEAT_INTERVAL_MS": "300",
            "TANDEM_KAFKA__REBALANCE_TIMEOUT_MS": "1000",
            "TANDEM_OUTBOX__POLL_SECONDS": "0.2",
        }
    )
    return env
