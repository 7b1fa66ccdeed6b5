"""The domain package stays pure: no I/O library is imported by any of its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tandem_alerts.domain

FORBIDDEN = {"sqlalchemy", "aiokafka", "fastapi", "httpx", "slack_sdk", "aiosmtplib", "aiohttp"}
MODULES = sorted(Path(tandem_alerts.domain.__file__).parent.glob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_domain_has_modules():
    assert len(MODULES) > 5


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_module_imports_no_io_library(path: Path):
    assert not imported_roots(path) & FORBIDDEN
