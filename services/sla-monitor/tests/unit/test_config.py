from __future__ import annotations

from pathlib import Path

import pytest

from tandem_shared.events import Signal, Tier
from tandem_sla_monitor.config import load_config
from tandem_sla_monitor.domain.policy import PolicyError
from tandem_sla_monitor.settings import SlaMonitorSettings

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "example"


def test_the_example_configuration_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.policy.allowed_minutes(Tier.T1, Signal.MEETING_REQUEST) == 15
    assert config.directory.get("ava.ae") is not None


def test_a_broken_policy_fails_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "sla.yaml").write_text("version: v1\nwarning_share: 2\n", encoding="utf-8")
    (tmp_path / "people.yaml").write_text("people: []\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="warning_share"):
        load_config(tmp_path)


def test_timer_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_SLA__TICK_SECONDS", "0.25")
    monkeypatch.setenv("TANDEM_SLA__CONSUMER_GROUP", "sla-shadow")
    settings = SlaMonitorSettings()
    assert settings.sla.tick_seconds == 0.25 and settings.sla.consumer_group == "sla-shadow"
