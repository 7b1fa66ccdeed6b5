"""`make up` / `make down`: the whole system starts healthy and stops leaving nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem_shared.local.embedded import free_port_block

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "tandem-local")
HEALTHY = re.compile(r"all five services are healthy \(([0-9.]+) s after launch\)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and " Z " in stat.read_text())


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A folder outside pytest's base temp: another pytest run resets that to mode 0700, and the
    embedded PostgreSQL runs as its own user, who must reach the data folder."""
    path = Path(tempfile.mkdtemp(prefix="tandem-stack-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_up_starts_five_healthy_services_and_down_leaves_no_process(workdir: Path) -> None:
    tmp_path = workdir
    shutil.copytree(ROOT / "config", tmp_path / "config")
    http_base = free_port_block(6)  # five services, then the broker
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") and not k.startswith("TANDEM_")
    }
    env.update(
        {"TANDEM_LOCAL_HTTP_BASE": str(http_base), "TANDEM_LOCAL_BROKER_PORT": str(http_base + 5)}
    )
    up = subprocess.Popen(
        [CLI, "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = time.monotonic()
        lines: list[str] = []
        assert up.stdout is not None
        for line in up.stdout:
            lines.append(line)
            if "all five services are healthy" in line:
                break
        assert time.monotonic() - started < 90, "".join(lines[-40:])
        banner = [m for ln in lines if (m := HEALTHY.search(ln))]
        assert banner, "".join(lines[-40:])
        assert float(banner[0].group(1)) < 30, banner[0].group(0)  # the start-up bound
        statuses = {o: _status(f"http://127.0.0.1:{http_base + o}/healthz") for o in range(5)}
        assert set(statuses.values()) == {200}, (statuses, "".join(lines[-40:]))
        run = json.loads((tmp_path / ".tandem/run.json").read_text())
        pids = [run["up"], run["broker"], *run["services"].values()]
        postmaster = int((Path(run["pgdata"]) / "postmaster.pid").read_text().split()[0])
        assert all(_alive(p) for p in [*pids, postmaster])

        down = subprocess.run(
            [CLI, "down"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        up.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in [*pids, postmaster]):
            time.sleep(0.2)
        assert [p for p in [*pids, postmaster] if _alive(p)] == []
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=30)
