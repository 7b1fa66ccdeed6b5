"""Deployment tests: deploy/ingress_routes.py, and the services' apps built once (not started)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[2]


def _load_checks() -> ModuleType:
    path = ROOT / "deploy/ingress_routes.py"
    spec = importlib.util.spec_from_file_location("ingress_routes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def checks() -> ModuleType:
    return _load_checks()


@pytest.fixture(scope="session")
async def apps(checks: ModuleType) -> AsyncIterator[dict[str, FastAPI]]:
    yield await checks.public_apps()
