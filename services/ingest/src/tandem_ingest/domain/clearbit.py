"""Clearbit audience webhooks (a company entering or leaving a segment) -> IntentObserved."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tandem_ingest.domain.normalized import ElementError, NormalizedEvent, NormalizeResult, Outcome
from tandem_ingest.domain.parsing import load_json, require_aware, validation_errors
from tandem_shared import topics
from tandem_shared.accounts import account_key
from tandem_shared.events import EventType, IntentObserved

SOURCE = "/ingest/clearbit"
PROVIDER = "clearbit"


class ClearbitConfig(BaseModel):
    """Which audiences mean a surge when a company enters them (by segment id or name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    surge_segments: frozenset[str] = frozenset()


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    trigger: Literal["segment_enter", "segment_exit"]
    segment_id: str | None = None
    segment_name: str | None = None
    timestamp: AwareDatetime | None = None


class _Company(BaseModel):
    model_config = ConfigDict(extra="ignore")

    domain: str = Field(min_length=1)
    name: str | None = None
    enrichment: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)


class ClearbitAudienceWebhook(BaseModel):
    """The parts of an audience webhook Tandem reads."""

    model_config = ConfigDict(extra="ignore")

    context: _Context
    company: _Company


def normalize_clearbit(
    body: bytes | object, *, config: ClearbitConfig | None = None, received_at: datetime
) -> NormalizeResult:
    """Normalize one audience webhook; its dedupe key is derived from its content."""
    require_aware(received_at, "received_at")
    data = load_json(body)
    return NormalizeResult.collect([_normalize(data, config or ClearbitConfig(), received_at)])


def _normalize(data: object, config: ClearbitConfig, received_at: datetime) -> Outcome:
    try:
        webhook = ClearbitAudienceWebhook.model_validate(data)
    except ValidationError as exc:
        return validation_errors(exc, index=None, prefix=())
    context, company = webhook.context, webhook.company
    key = account_key(company.domain)
    if key is None:
        return [
            ElementError(None, ("company", "domain"), f"not a company domain: {company.domain!r}")
        ]
    segment = context.segment_id or context.segment_name
    if segment is None:
        message = "a segment_id or segment_name is required"
        return [ElementError(None, ("context", "segment_id"), message)]
    entered = context.trigger == "segment_enter"
    surge_names = {context.segment_id, context.segment_name} & config.surge_segments
    payload = IntentObserved(
        provider=PROVIDER,
        account_key=key,
        company_name=company.name or company.enrichment.get("name"),
        topic=context.segment_name or segment,
        surging=entered and bool(surge_names),
        segment=segment,
        entered=entered,
        attributes=_attributes(company),
        observed_at=context.timestamp or received_at,
    )
    return [
        NormalizedEvent(
            source=SOURCE,
            topic=topics.INTENT,
            type=EventType.INTENT_OBSERVED,
            subject=key,
            dedupe_key=_content_key(data, segment, key, context),
            occurred_at=payload.observed_at,
            payload=payload,
        )
    ]


def _attributes(company: _Company) -> dict[str, Any]:
    metrics = company.enrichment.get("metrics")
    attributes: dict[str, Any] = {"traits": company.traits}
    if isinstance(metrics, dict) and metrics.get("employees_range"):
        attributes["employees_range"] = metrics["employees_range"]
    return attributes


def _content_key(data: object, segment: str, key: str, context: _Context) -> str:
    # Clearbit sends no delivery id: a retry repeats the same transition at the same instant.
    if context.timestamp is not None:
        return f"{segment}:{key}:{context.trigger}:{context.timestamp.isoformat()}"
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{segment}:{key}:{context.trigger}:sha256:{digest}"
