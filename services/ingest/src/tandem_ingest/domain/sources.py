"""The webhook sources an installation accepts: their kind, kind-specific config and secrets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tandem_ingest.domain.bombora import BomboraConfig
from tandem_ingest.domain.clearbit import ClearbitConfig
from tandem_ingest.domain.generic import GenericConfig
from tandem_ingest.domain.hubspot import HubSpotConfig
from tandem_ingest.domain.outreach import OutreachConfig
from tandem_ingest.domain.ratelimit import RateLimit
from tandem_ingest.domain.salesforce import SalesforceConfig
from tandem_ingest.domain.segment import SegmentConfig

# Values that mean "nobody set this secret": refused in prod.
_PLACEHOLDERS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "dev", "test"})


class SourceKind(StrEnum):
    """Which vendor protocol a source speaks."""

    HUBSPOT = "hubspot"
    SALESFORCE_OUTBOUND = "salesforce_outbound"
    SALESFORCE_CDC = "salesforce_cdc"
    SEGMENT = "segment"
    CLEARBIT = "clearbit"
    BOMBORA = "bombora"
    GENERIC = "generic"
    OUTREACH = "outreach"


# Vendors that cannot sign their requests: a source of these kinds either checks a shared token
# (`?token=` for webhooks, `Authorization: Bearer` for uploads) or says `unsigned: true`.
UNSIGNED_KINDS = frozenset(
    {SourceKind.SALESFORCE_OUTBOUND, SourceKind.CLEARBIT, SourceKind.BOMBORA}
)
UPLOAD_KINDS = frozenset({SourceKind.BOMBORA})

KindConfig = (
    HubSpotConfig
    | SalesforceConfig
    | SegmentConfig
    | ClearbitConfig
    | BomboraConfig
    | GenericConfig
    | OutreachConfig
    | None
)

_CONFIG_PARSERS: dict[SourceKind, Callable[[Any], KindConfig]] = {
    SourceKind.HUBSPOT: HubSpotConfig.model_validate,
    SourceKind.SALESFORCE_OUTBOUND: SalesforceConfig.model_validate,
    SourceKind.SALESFORCE_CDC: SalesforceConfig.model_validate,
    SourceKind.SEGMENT: SegmentConfig.model_validate,
    SourceKind.CLEARBIT: ClearbitConfig.model_validate,
    SourceKind.BOMBORA: BomboraConfig.model_validate,
    SourceKind.GENERIC: GenericConfig.model_validate,
    SourceKind.OUTREACH: OutreachConfig.model_validate,
}


class SourcesError(ValueError):
    """The sources configuration is unusable; the service refuses to start."""


class SourceSpec(BaseModel):
    """One entry of sources.yaml, as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: SourceKind
    description: str | None = None
    secrets: tuple[str, ...] = ()  # names of environment variables, all active (rotation)
    dev_secrets: tuple[str, ...] = ()  # inline values for dev and test only
    unsigned: bool = False  # only for vendors that cannot sign (see UNSIGNED_KINDS)
    allow_legacy_signatures: bool = True  # HubSpot v1/v2 besides v3
    max_body_bytes: int | None = Field(None, gt=0)
    rate_limit: RateLimit = RateLimit()
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_unsigned(self) -> SourceSpec:
        if self.unsigned and self.kind not in UNSIGNED_KINDS:
            raise ValueError(f"a {self.kind} source must be signed: remove `unsigned`")
        if self.unsigned and (self.secrets or self.dev_secrets):
            raise ValueError("an unsigned source has no secrets")
        return self


@dataclass(frozen=True, slots=True)
class Source:
    """A source ready to serve: its spec, its active secrets and its validated kind config."""

    spec: SourceSpec
    secrets: tuple[str, ...]
    config: KindConfig

    @property
    def name(self) -> str:
        """Return the URL segment of the source."""
        return self.spec.name

    @property
    def kind(self) -> SourceKind:
        """Return the vendor protocol of the source."""
        return self.spec.kind

    @property
    def is_upload(self) -> bool:
        """Return whether the source takes file uploads rather than webhooks."""
        return self.spec.kind in UPLOAD_KINDS


def parse_sources(
    data: object, *, environ: Mapping[str, str], production: bool
) -> dict[str, Source]:
    """Validate sources.yaml content and resolve every source's active secrets."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        raise SourcesError("sources.yaml must hold `sources:` with a list of sources")
    sources: dict[str, Source] = {}
    for position, entry in enumerate(data["sources"]):
        try:
            spec = SourceSpec.model_validate(entry)
        except ValidationError as exc:
            raise SourcesError(f"sources[{position}]: {exc}") from exc
        if spec.name in sources:
            raise SourcesError(f"source {spec.name!r} is defined twice")
        sources[spec.name] = resolve_source(spec, environ=environ, production=production)
    return sources


def resolve_source(spec: SourceSpec, *, environ: Mapping[str, str], production: bool) -> Source:
    """Return the source with its secrets: env values first, then dev_secrets outside prod."""
    from_env = tuple(environ[name] for name in spec.secrets if environ.get(name, "").strip())
    if production:
        placeholders = [v for v in from_env if v.strip().lower() in _PLACEHOLDERS]
        if placeholders:
            raise SourcesError(f"source {spec.name!r}: a placeholder secret is refused in prod")
        secrets = from_env
    else:
        secrets = from_env + spec.dev_secrets
    if not secrets and not spec.unsigned:
        hint = " (dev_secrets are refused in prod)" if production and spec.dev_secrets else ""
        names = ", ".join(spec.secrets) or "none declared"
        raise SourcesError(f"source {spec.name!r} has no active secret: set {names}{hint}")
    return Source(spec=spec, secrets=secrets, config=_kind_config(spec))


def _kind_config(spec: SourceSpec) -> KindConfig:
    parse = _CONFIG_PARSERS.get(spec.kind)
    if parse is None:
        if spec.config:
            raise SourcesError(f"source {spec.name!r}: a {spec.kind} source takes no config")
        return None
    try:
        return parse(spec.config)
    except ValidationError as exc:
        raise SourcesError(f"source {spec.name!r} config: {exc}") from exc
