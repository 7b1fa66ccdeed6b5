"""`tandem-api-gateway keys`: the dev demo keys for newcomers, refused outside dev."""

from __future__ import annotations

import pytest

from tandem_api_gateway.main import keys_command
from tandem_api_gateway.settings import DEMO_KEYS, GatewaySettings


def test_dev_prints_every_demo_key_with_its_role_and_person(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert keys_command(GatewaySettings(env="dev"), []) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["role", "person", "key"]
    rows = [line.split() for line in lines[1:]]
    assert rows == [[k.role.value, k.person_id, k.key] for k in DEMO_KEYS]
    assert ["revops-admin", "lea.leader", DEMO_KEYS[0].key] in rows


@pytest.mark.parametrize("env", ["test", "prod"])
def test_other_environments_refuse_and_print_no_key(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_GATEWAY__API_KEY_PEPPER", "a-real-pepper-for-prod-0123456789")
    assert keys_command(GatewaySettings(env=env), []) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "refusing" in captured.err and "TANDEM_ENV=dev" in captured.err
    assert all(k.key not in captured.err for k in DEMO_KEYS)
