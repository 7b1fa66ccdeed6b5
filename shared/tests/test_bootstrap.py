from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tandem_shared.bootstrap import BuiltService, build_infra, serve_built
from tandem_shared.settings import Settings


class OwnSettings(Settings):
    pass


def test_serve_refuses_settings_of_another_type_before_building() -> None:
    built: list[Settings] = []

    def build(settings: OwnSettings) -> BuiltService:
        built.append(settings)
        raise AssertionError("must not build")

    serve = serve_built(OwnSettings, build)
    with pytest.raises(TypeError, match="runs with OwnSettings"):
        asyncio.run(serve(Settings(service="demo")))
    assert built == []


def test_lifecycle_stops_only_the_hooks_that_started_last_first() -> None:
    calls: list[str] = []

    def hook(name: str, *, fails: bool = False) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            calls.append(name)
            if fails:
                raise RuntimeError(name)

        return call

    async def scenario() -> None:
        infra = build_infra(Settings(service="demo"), schema="demo", with_relay=False)
        infra.on_start(hook("start a"), stop=hook("stop a"))
        infra.on_start(hook("start b"))
        infra.on_start(hook("start c"), stop=hook("stop c"))
        async with infra.lifecycle():
            calls.append("running")
        infra.on_start(hook("start d", fails=True), stop=hook("stop d"))
        with pytest.raises(RuntimeError, match="start d"):
            async with infra.lifecycle():
                calls.append("never")
        await infra.engine.dispose()

    asyncio.run(scenario())
    first = ["start a", "start b", "start c"]
    assert calls == [*first, "running", "stop c", "stop a", *first, "start d", "stop c", "stop a"]
