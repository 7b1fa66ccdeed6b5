"""What a service's `domain/` package may not import: the check behind each purity test.

A domain module decides; it does not read files, talk to PostgreSQL, Kafka or HTTP, or reach
into its own service's I/O shell. Each service runs `impure_imports` over its domain package in
a unit test, so an import that would make a decision depend on I/O fails the build.
"""

from __future__ import annotations

import ast
from pathlib import Path

# Third-party and standard-library modules that do I/O (or exist to).
IO_MODULES = frozenset(
    {
        "aiohttp",
        "aiokafka",
        "aiosmtplib",
        "asyncpg",
        "fastapi",
        "httpx",
        "os",
        "pathlib",
        "requests",
        "shutil",
        "slack_sdk",
        "socket",
        "sqlalchemy",
        "starlette",
        "subprocess",
        "urllib.request",
        "uvicorn",
    }
)
# tandem_shared's I/O shell; its other modules (events, directory, policies) are pure.
SHARED_SHELL = frozenset(
    {
        "tandem_shared.availability",
        "tandem_shared.batches",
        "tandem_shared.bootstrap",
        "tandem_shared.consumer",
        "tandem_shared.db",
        "tandem_shared.dlq",
        "tandem_shared.kafka",
        "tandem_shared.local",
        "tandem_shared.migrations",
        "tandem_shared.outbox",
        "tandem_shared.relay",
        "tandem_shared.service",
        "tandem_shared.telemetry",
        "tandem_shared.uow",
        "tandem_shared.worker",
    }
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _forbidden(name: str, service_package: str) -> bool:
    def under(prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    if any(under(m) for m in IO_MODULES | SHARED_SHELL):
        return True
    # The service's own modules outside its domain are its shell (adapters, handlers, main).
    return under(service_package) and not under(f"{service_package}.domain")


def impure_imports(domain_dir: Path, service_package: str) -> dict[str, list[str]]:
    """Return, per module of `domain_dir`, the imports that would bring I/O into the domain."""
    found = {}
    for path in sorted(domain_dir.glob("*.py")):
        bad = sorted(n for n in _imports(path) if _forbidden(n, service_package))
        if bad:
            found[path.name] = bad
    return found
