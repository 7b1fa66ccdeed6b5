"""Resolvers: each reads what its vendor's lookups need from the vendor's API, then builds their
events with the pure mappings (hubspot_records, outreach). One per vendor, keyed by the prefix
of the lookup kind ("hubspot.activity" -> "hubspot")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tandem_ingest.adapters.hubspot_api import HubSpotApi
from tandem_ingest.adapters.lookup_store import ClaimedLookup
from tandem_ingest.adapters.outreach_api import OutreachApi
from tandem_ingest.domain.hubspot import HubSpotConfig
from tandem_ingest.domain.hubspot_records import (
    ACTIVITY_PROPERTIES,
    ACTIVITY_TYPES,
    COMPANY,
    COMPANY_PROPERTIES,
    CONTACT,
    CONTACT_PROPERTIES,
    Fetched,
    association_reads,
    build_event,
    company_reads,
    contact_reads,
    first_reads,
)
from tandem_ingest.domain.normalized import Lookup, NormalizedEvent
from tandem_ingest.domain.outreach import OutreachRecords, build_outreach_event, outreach_reads
from tandem_ingest.domain.sources import Source


@dataclass(frozen=True, slots=True)
class Unusable:
    """A lookup whose records came back but cannot be mapped: it stays queued with the reason."""

    reason: str


Resolved = NormalizedEvent | Unusable | None  # None: the record is gone from the vendor


class Resolver(Protocol):
    """Fetches and builds one vendor's lookups; raises ApiError when its API cannot answer."""

    async def resolve(self, claimed: Sequence[ClaimedLookup]) -> dict[str, Resolved]: ...

    async def close(self) -> None: ...


def _build_each(
    claimed: Sequence[ClaimedLookup], build: Callable[[ClaimedLookup], NormalizedEvent | None]
) -> dict[str, Resolved]:
    resolved: dict[str, Resolved] = {}
    for item in claimed:
        try:
            resolved[item.event_id] = build(item)
        except (KeyError, TypeError, ValueError) as exc:
            resolved[item.event_id] = Unusable(repr(exc))
    return resolved


async def fetch_hubspot(
    api: HubSpotApi, lookups: Iterable[Lookup], *, extra_properties: Iterable[str] = ()
) -> Fetched:
    """Read what the lookups need in three rounds of batch reads (see hubspot_records)."""
    wanted = list(lookups)
    extra = set(extra_properties)
    properties = {
        CONTACT: {*CONTACT_PROPERTIES, *extra},
        COMPANY: {*COMPANY_PROPERTIES, *extra},
        **{type_id: set(ACTIVITY_PROPERTIES) for type_id in ACTIVITY_TYPES},
    }
    fetched = Fetched()

    async def read(type_id: str, ids: set[str]) -> None:
        if ids:
            found = await api.read(type_id, ids, properties[type_id])
            fetched.records.update({(type_id, i): p for i, p in found.items()})

    for type_id, ids in first_reads(wanted).items():
        await read(type_id, ids)
    for (from_type, to_type), ids in association_reads(wanted).items():
        for from_id, to_ids in (await api.associations(from_type, to_type, ids)).items():
            fetched.associations[(from_type, from_id, to_type)] = to_ids
    await read(CONTACT, contact_reads(wanted, fetched))
    await read(COMPANY, company_reads(wanted, fetched))
    return fetched


class HubSpotResolver:
    """HubSpot's lookups through the CRM API; properties mapped per the source's config."""

    def __init__(self, api: HubSpotApi, sources: Mapping[str, Source]) -> None:
        self._api = api
        self._sources = sources

    def _property_map(self, source_name: str) -> Mapping[str, str]:
        source = self._sources.get(source_name)
        config = source.config if source is not None else None
        return (config if isinstance(config, HubSpotConfig) else HubSpotConfig()).property_map

    async def resolve(self, claimed: Sequence[ClaimedLookup]) -> dict[str, Resolved]:
        maps = {c.source_name: self._property_map(c.source_name) for c in claimed}
        extra = {name for m in maps.values() for name in m}
        lookups = [c.lookup for c in claimed]
        fetched = await fetch_hubspot(self._api, lookups, extra_properties=extra)
        return _build_each(
            claimed, lambda c: build_event(c.lookup, fetched, property_map=maps[c.source_name])
        )

    async def close(self) -> None:
        await self._api.close()


class OutreachResolver:
    """Outreach's lookups: the reps' emails, the prospects' emails and their accounts' domains."""

    def __init__(self, api: OutreachApi) -> None:
        self._api = api

    async def resolve(self, claimed: Sequence[ClaimedLookup]) -> dict[str, Resolved]:
        users, prospects, accounts = outreach_reads([c.lookup for c in claimed])
        records = OutreachRecords()
        if users:
            records.user_emails = await self._api.user_emails(users)
        if prospects:
            records.prospects, records.account_domains = await self._api.prospects(prospects)
        accounts |= {a for _, a in records.prospects.values() if a}
        missing = accounts - records.account_domains.keys()
        if missing:
            records.account_domains.update(await self._api.account_domains(missing))
        return _build_each(claimed, lambda c: build_outreach_event(c.lookup, records))

    async def close(self) -> None:
        await self._api.close()
