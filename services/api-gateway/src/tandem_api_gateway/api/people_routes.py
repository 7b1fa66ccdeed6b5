"""`PUT /v1/people/{id}/availability`: out of office (and cover), capacity, working hours;
`GET` of the same path: the availability in force (people.yaml's seed with the run-time changes
of `tandem.people` over it, as the router, the SLA monitor and alerts apply them).

A person sets and reads their own; sales leaders and revops set anyone's, leaders read anyone's.
A change is published on `tandem.people`, which the router, the SLA monitor and alerts apply at
once (202); people.yaml stays the seed and never undoes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Header
from pydantic import Field, model_validator

from tandem_api_gateway.adapters import action_reads
from tandem_api_gateway.api.auth import PrincipalDep, require
from tandem_api_gateway.api.context import GatewayDep
from tandem_api_gateway.api.errors import NotFound
from tandem_api_gateway.api.publishing import publish
from tandem_api_gateway.api.read_routes import Id
from tandem_api_gateway.api.schemas import ErrorOut, Request, Response
from tandem_api_gateway.domain.authz import Operation, Role
from tandem_api_gateway.domain.errors import InvalidInput, NotPermitted
from tandem_shared import topics
from tandem_shared.availability import Availability, apply_person
from tandem_shared.directory import Directory, Period, WorkingHours
from tandem_shared.events import AvailabilityChanged, EventType

router = APIRouter(prefix="/v1", tags=["people"])

_SETS_ANYONES = frozenset({Role.SALES, Role.REVOPS_ADMIN})


class AvailabilityIn(Request):
    out_of_office: list[Period] | None = Field(
        default=None, max_length=20, description="The periods away now; [] means back"
    )
    cover_id: str | None = Field(default=None, min_length=1, max_length=200)
    clear_cover: bool = False
    capacity: int | None = Field(default=None, ge=0, le=10_000)
    working_hours: WorkingHours | None = None

    @model_validator(mode="after")
    def _something(self) -> AvailabilityIn:
        if not self.model_fields_set:
            raise ValueError("say what changes: out_of_office, cover_id, capacity or working_hours")
        periods = self.out_of_office or ()
        if any(p.start.tzinfo is None or p.end.tzinfo is None for p in periods):
            raise ValueError("out_of_office: times need a UTC offset (e.g. 2026-12-04T17:00Z)")
        if any(p.end <= p.start for p in periods):
            raise ValueError("out_of_office: each period must end after it starts")
        return self


class AvailabilityOut(Response):
    change_id: str
    person_id: str
    changed_at: datetime


class AvailabilityView(Response):
    """A person's availability in force: the seed, with run-time changes over it."""

    person_id: str
    out_of_office: list[Period] = Field(default_factory=list)
    away_now: bool = False
    cover_id: str | None = None
    capacity: int | None = None
    working_hours: WorkingHours | None = None
    changed_at: datetime | None = None  # the last run-time change (None: the seed stands)


@router.get(
    "/people/{person_id}/availability",
    responses={code: {"model": ErrorOut} for code in (401, 403, 404, 429)},
)
async def get_availability(
    gateway: GatewayDep, principal: PrincipalDep, person_id: Id
) -> AvailabilityView:
    """Return a person's availability (yourself; leaders and revops: anyone)."""
    require(principal, Operation.READ_AVAILABILITY)
    if person_id != principal.person_id and not principal.is_leader:
        raise NotPermitted("you may read only your own availability")
    async with gateway.read() as session:
        changed = await action_reads.get_availability(session, person_id)
    view = availability_view(person_id, gateway.directory, changed, now=gateway.clock())
    if view is None:
        raise NotFound(f"person {person_id} not found")
    return view


def availability_view(
    person_id: str, directory: Directory | None, changed: Availability | None, *, now: datetime
) -> AvailabilityView | None:
    """Return the seed's values with the run-time ones over them (None: nobody knows them).

    Without people.yaml the gateway knows only the run-time changes (any person may have some).
    """
    seed = directory.get(person_id) if directory is not None else None
    capacity: int | None
    hours: WorkingHours | None
    if seed is not None:
        person = apply_person(seed, changed)
        periods, cover_id = list(person.out_of_office), person.cover_id
        capacity, hours = person.capacity, person.working_hours
    elif directory is None:
        found = changed or Availability(person_id=person_id, changed_at=now)
        periods, cover_id = list(found.out_of_office or ()), found.cover_id
        capacity, hours = found.capacity, found.working_hours
    else:
        return None
    return AvailabilityView(
        person_id=person_id,
        out_of_office=periods,
        away_now=any(p.start <= now < p.end for p in periods),
        cover_id=cover_id,
        capacity=capacity,
        working_hours=hours,
        changed_at=changed.changed_at if changed is not None else None,
    )


@router.put(
    "/people/{person_id}/availability",
    status_code=202,
    responses={code: {"model": ErrorOut} for code in (401, 403, 404, 422, 429)},
)
async def set_availability(
    gateway: GatewayDep,
    principal: PrincipalDep,
    person_id: Id,
    body: AvailabilityIn,
    idempotency_key: str | None = Header(default=None, max_length=200),
) -> AvailabilityOut:
    """Set a person's availability (yourself; sales leaders and revops: anyone)."""
    require(principal, Operation.SET_AVAILABILITY)
    if person_id != principal.person_id and principal.role not in _SETS_ANYONES:
        raise NotPermitted("you may set only your own availability")
    directory = gateway.directory  # None without people.yaml: the services judge the names
    if directory is not None and directory.get(person_id) is None:
        raise NotFound(f"person {person_id} not found")
    if body.cover_id == person_id or (
        directory is not None and body.cover_id is not None and directory.get(body.cover_id) is None
    ):
        raise InvalidInput(f"cover_id: {body.cover_id} cannot cover for {person_id}")
    now = gateway.clock()
    # The same request (its Idempotency-Key, else its content at this moment) is one change.
    trigger = idempotency_key or body.model_dump_json() + now.isoformat()
    name = f"tandem:availability:{person_id}:{trigger}"
    change_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    event = AvailabilityChanged(
        change_id=change_id,
        person_id=person_id,
        changed_by=principal.person_id,
        via="api",
        out_of_office=body.out_of_office,
        cover_id=body.cover_id,
        clear_cover=body.clear_cover,
        capacity=body.capacity,
        working_hours=body.working_hours,
        changed_at=now,
    )
    async with gateway.write() as uow:
        publish(
            uow,
            topics.PEOPLE,
            event,
            type=EventType.AVAILABILITY_CHANGED,
            subject=person_id,
            name=name,
            time=now,
        )
    return AvailabilityOut(change_id=change_id, person_id=person_id, changed_at=now)
