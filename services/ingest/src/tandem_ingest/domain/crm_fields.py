"""Mapping of CRM properties onto the canonical CRM payloads, shared by HubSpot and Salesforce."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tandem_ingest.domain.normalized import ElementError, Loc
from tandem_ingest.domain.parsing import clean_text
from tandem_shared.accounts import account_key, registered_domain
from tandem_shared.events import Model, Tier

# "tier_1", "Tier 1", "tier-1", "T1", "1", "1.0"
_TIER = re.compile(r"(?:tier|t)?[\s_-]*([123])(?:\.0+)?", re.IGNORECASE)


def parse_tier(value: object) -> Tier | None:
    """Return the tier a CRM value names, None when blank; raise ValueError when unrecognised."""
    text = clean_text(value)
    if text is None:
        return None
    match = _TIER.fullmatch(text)
    if match is None:
        raise ValueError(f"unrecognised tier {text!r}: expected e.g. 'tier_1', 'Tier 1' or '1'")
    return Tier(match.group(1))


def _coerce(target: str, raw: object) -> object:
    if target == "tier":
        return parse_tier(raw)
    text = clean_text(raw) if isinstance(raw, str) or raw is None else raw
    if target == "domain" and text is not None:
        domain = registered_domain(str(text))
        if domain is None:
            raise ValueError(f"not a domain or URL: {text!r}")
        return domain
    return text


@dataclass(slots=True)
class MappedFields:
    """Canonical values taken from CRM properties, with where each came from."""

    values: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # canonical field -> CRM property
    errors: dict[str, str] = field(default_factory=dict)  # CRM property -> why it was refused


def map_properties(
    properties: Mapping[str, object], *, field_map: Mapping[str, str], model: type[Model]
) -> MappedFields:
    """Map the CRM properties `model` has a field for; derive the account key from domain/email."""
    mapped = MappedFields()
    for name, raw in properties.items():
        target = _target(field_map, name)
        if target is None or target not in model.model_fields:
            continue
        try:
            mapped.values[target] = _coerce(target, raw)
        except ValueError as exc:
            mapped.errors[name] = str(exc)
        else:
            mapped.origin[target] = name
    if "account_key" in model.model_fields and "account_key" not in mapped.values:
        source = mapped.values.get("domain") or mapped.values.get("email")
        mapped.values["account_key"] = account_key(source) if source else None
    return mapped


def _target(field_map: Mapping[str, str], name: str) -> str | None:
    # Names match ignoring case; the exact spelling is the cheap, common case on the hot path.
    target = field_map.get(name)
    if target is None:
        lowered = name.lower()
        target = next((t for n, t in field_map.items() if n.lower() == lowered), None)
    return target


def build_payload(
    model: type[Model],
    *,
    base: Mapping[str, Any],
    mapped: MappedFields,
    index: int | None,
    loc_of: Callable[[str], Loc],
) -> Model | list[ElementError]:
    """Validate the canonical payload; errors point at the CRM property that caused them."""
    if mapped.errors:
        return [
            ElementError(index, loc_of(name), message) for name, message in mapped.errors.items()
        ]
    try:
        return model.model_validate({**base, **mapped.values})
    except ValidationError as exc:
        return [
            ElementError(index, loc_of(_origin(mapped, error["loc"])), error["msg"])
            for error in exc.errors(include_url=False)
        ]


def _origin(mapped: MappedFields, loc: tuple[str | int, ...]) -> str:
    canonical = str(loc[0]) if loc else ""
    return mapped.origin.get(canonical, canonical)
