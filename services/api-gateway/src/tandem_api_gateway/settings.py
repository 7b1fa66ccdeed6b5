"""Settings of the API gateway: the shared ones plus API keys, rate limits and the dashboard."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, SecretStr, model_validator

from tandem_api_gateway.domain.authz import Role
from tandem_shared.settings import Environment, Settings

# Only ever used when TANDEM_ENV=dev or test; prod refuses to start with it.
DEV_PEPPER = "tandem-dev-only-api-key-pepper-not-a-secret"


class DemoKey(BaseModel):
    """An API key seeded in dev so the dashboard and the curl examples work out of the box."""

    key: str
    role: Role
    person_id: str


def _demo_key(index: int, role: Role, person_id: str) -> DemoKey:
    secret = f"demo-{role.value}-{person_id.replace('.', '-')}-local-only".ljust(43, "0")[:43]
    return DemoKey(key=f"tdm_de{index:010x}_{secret}", role=role, person_id=person_id)


DEMO_KEYS = (
    _demo_key(1, Role.REVOPS_ADMIN, "lea.leader"),
    _demo_key(2, Role.MARKETING, "mia.marketing"),
    _demo_key(3, Role.SALES, "sam.manager"),
    _demo_key(4, Role.REP, "ava.ae"),
    _demo_key(5, Role.REP, "ben.ae"),
)


class GatewayOptions(BaseModel):
    api_key_pepper: SecretStr = SecretStr(DEV_PEPPER)
    cursor_key: SecretStr | None = None  # signs pagination cursors when set
    rate_limit_per_second: float = Field(default=20.0, gt=0)  # sustained, per API key
    rate_limit_burst: int = Field(default=100, ge=1)
    demo_keys: list[DemoKey] = Field(default_factory=lambda: list(DEMO_KEYS))
    # The key the dashboard uses without ?key= (dev only); defaults to the revops demo key.
    dashboard_key: str | None = None
    # Retention of raw rows (retention.py; 0 keeps them): timeline entries beyond the longest
    # named metrics period, so every period but `all` and old custom ones reads raw rows.
    keep_timeline_days: int = Field(default=400, ge=0)
    keep_deliveries_days: int = Field(default=90, ge=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_batch: int = Field(default=5000, ge=1)


class GatewaySettings(Settings):
    """Settings of `tandem-api-gateway` (TANDEM_GATEWAY__* on top of the shared ones)."""

    gateway: GatewayOptions = GatewayOptions()

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_prod(self) -> Self:
        if self.env is Environment.PROD:
            name = "TANDEM_GATEWAY__API_KEY_PEPPER"
            pepper = self.require_secret(name, self.gateway.api_key_pepper)
            if pepper == DEV_PEPPER:
                raise ValueError(f"{name} is the dev default; refusing to start in prod")
        return self

    @property
    def pepper(self) -> bytes:
        """Return the API key pepper as bytes."""
        return self.gateway.api_key_pepper.get_secret_value().encode()

    @property
    def cursor_key(self) -> bytes | None:
        """Return the cursor signing key, if any."""
        key = self.gateway.cursor_key
        return key.get_secret_value().encode() if key is not None else None

    @property
    def seeds_demo_keys(self) -> bool:
        """Return True when the demo keys are seeded (dev only)."""
        return self.env is Environment.DEV

    def demo_keys_table(self) -> str:
        """Return the dev demo keys with their roles and people, one per line (dev only)."""
        if not self.seeds_demo_keys:
            raise ValueError(f"demo keys exist only when TANDEM_ENV=dev (this is {self.env.value})")
        width = max(len(k.role.value) for k in self.gateway.demo_keys)
        lines = [f"{'role':<{width}}  {'person':<14} key"]
        lines += [
            f"{k.role.value:<{width}}  {k.person_id:<14} {k.key}" for k in self.gateway.demo_keys
        ]
        return "\n".join(lines)

    @property
    def dashboard_default_key(self) -> str | None:
        """Return the key the dashboard uses without ?key= (None outside dev)."""
        if self.env is not Environment.DEV:
            return None
        return self.gateway.dashboard_key or DEMO_KEYS[0].key
