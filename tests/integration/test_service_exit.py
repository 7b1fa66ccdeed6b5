"""A service whose worker dies exits non-zero (an orchestrator restarts it); a stop signal, zero.

The program below is what every service's `tandem-<service> serve` is: `bootstrap.cli` running
`service.serve` with the HTTP app and the workers, here one worker that fails on request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from tandem_shared.local.embedded import free_port

PROGRAM = textwrap.dedent(
    """
    import asyncio, os
    from pathlib import Path
    from fastapi import FastAPI
    from tandem_shared.bootstrap import cli
    from tandem_shared.service import ops_router, serve

    class Worker:
        def __init__(self, fail_after: float | None) -> None:
            self.fail_after, self.stopping = fail_after, asyncio.Event()

        async def run(self) -> None:
            if self.fail_after is None:
                await self.stopping.wait()
                return
            await asyncio.sleep(self.fail_after)
            raise ConnectionResetError("the worker's connection broke")

        def stop(self) -> None:
            self.stopping.set()

    async def serve_fn(settings) -> None:
        app = FastAPI()
        app.include_router(ops_router(lambda: None))
        after = os.environ["FAIL_AFTER"]
        fail_after = None if after == "never" else float(after)
        steady, failing = Worker(None), Worker(fail_after)
        await serve(app, host="127.0.0.1", port=int(os.environ["PORT"]), workers=[steady, failing])

    cli(service="exit-test", schema="exit_test", migrations=Path("."), serve_fn=serve_fn)
    """
)


def _start(tmp_path: Path, fail_after: str) -> tuple[subprocess.Popen[str], int]:
    script = tmp_path / "service.py"
    script.write_text(PROGRAM)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), "serve"],
        env={**os.environ, "PORT": str(port), "FAIL_AFTER": fail_after},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


def _wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"not healthy (exit {proc.poll()})")


def test_a_worker_that_dies_makes_the_service_exit_non_zero(tmp_path: Path) -> None:
    proc, port = _start(tmp_path, fail_after="1.5")
    _wait_healthy(proc, port)  # it served first: the failure comes while running
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, output
    assert "worker failed" in output
    assert "the worker's connection broke" in output
    assert "stopped" in output  # the orderly stop ran before the exit
    assert "Traceback" not in output  # the failure is logged once, not dumped


def test_a_stop_signal_makes_the_service_exit_zero(tmp_path: Path) -> None:
    proc, port = _start(tmp_path, fail_after="never")
    _wait_healthy(proc, port)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "worker failed" not in output
