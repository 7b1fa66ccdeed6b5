"""Settings of the SLA monitor: the shared ones plus the timer's (TANDEM_SLA__...)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tandem_shared.settings import Settings
from tandem_shared.topics import SLA_GROUP


class SlaSettings(BaseModel):
    # Another deployment of the service (a shadow, a test) consumes under a group of its own.
    consumer_group: str = SLA_GROUP
    tick_seconds: float = Field(default=0.5, gt=0)  # how often the timer looks for due clocks
    batch_size: int = Field(default=100, ge=1)  # clocks fired per transaction
    stall_seconds: float = Field(default=30.0, gt=0)  # readiness fails past this without a tick
    # Touches that arrive before the decision they answer wait this long for it.
    early_activity_retention_hours: float = Field(default=72.0, gt=0)
    purge_every_seconds: float = Field(default=600.0, gt=0)
    metrics_window_days: int = Field(default=30, ge=1)  # default window of GET /v1/metrics/sla


class SlaMonitorSettings(Settings):
    """What the SLA monitor reads from its environment."""

    sla: SlaSettings = SlaSettings()
