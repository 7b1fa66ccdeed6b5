from __future__ import annotations

import asyncio

import pytest

from tandem_shared.bootstrap import BuiltService, serve_built
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
