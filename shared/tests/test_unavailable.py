"""Requests that fail on the database or the network answer 503 + Retry-After; bugs stay 500."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from tandem_shared.service import UNAVAILABLE_RETRY_AFTER_SECONDS, answer_unavailable_with_503


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _app() -> FastAPI:
    app = FastAPI()
    answer_unavailable_with_503(app)

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "connect call failed")

    @app.get("/shutting-down")
    async def shutting_down() -> None:
        raise sa_exc.DBAPIError("SELECT 1", None, _Orig("57P01"))

    @app.get("/starting-up")
    async def starting_up() -> None:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    @app.get("/closed")
    async def closed() -> None:
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")

    @app.get("/duplicate")
    async def duplicate() -> None:
        raise sa_exc.DBAPIError("INSERT", None, _Orig("23505"))

    return app


async def test_database_outages_are_503_with_retry_after_and_bugs_stay_500() -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        paths = ("/refused", "/shutting-down", "/starting-up", "/closed", "/duplicate")
        answers = {p: await client.get(p) for p in paths}
    assert {p: r.status_code for p, r in answers.items()} == {
        "/refused": 503,
        "/shutting-down": 503,
        "/starting-up": 503,  # asyncpg's own, from hot paths on the driver
        "/closed": 503,
        "/duplicate": 500,
    }
    assert answers["/refused"].headers["retry-after"] == str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    assert "retry later" in answers["/shutting-down"].json()["detail"]
