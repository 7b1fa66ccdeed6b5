"""Fan-out planning: who gets an alert, on which channel, and now or later."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from tandem_shared.directory import Directory, Person, QuietHours
from tandem_shared.events import (
    AlertFailed,
    AlertRequested,
    DeliveryChannel,
    Signal,
    Tier,
    Urgency,
)

CHANNEL_RECIPIENT_PREFIX = "channel:"


class Timing(StrEnum):
    """When a planned delivery goes out."""

    NOW = "now"
    DIGEST = "digest"  # with the recipient's next digest
    LATER = "later"  # at `not_before` (the person is back or out of quiet hours, and has no digest)


@dataclass(frozen=True, kw_only=True)
class Transports:
    """Which real transports are configured; a missing one is replaced by the log sink."""

    slack: bool
    email: bool


class PlannedDelivery(BaseModel):
    """One notification to send (or hold) for one recipient on one channel."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    recipient_id: str  # a person id, or "channel:<id>" for a directory channel
    channel: DeliveryChannel
    destination: str  # Slack user or channel id, email address, or the log sink's reader
    idempotency_key: str
    timing: Timing = Timing.NOW
    not_before: datetime | None = None
    on_behalf_of: str | None = None  # the person a cover receives an urgent item for


class PlanFailure(BaseModel):
    """A recipient the alert could not be planned for; recorded, never raised."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    recipient_id: str
    error: str

    def as_event(self, *, failed_at: datetime) -> AlertFailed:
        """Describe this failure as the AlertFailed event the service emits."""
        return AlertFailed(
            alert_id=self.alert_id,
            recipient_id=self.recipient_id,
            channel=None,  # no channel could be chosen
            attempts=0,
            error=self.error,
            permanent=True,
            failed_at=failed_at,
        )


class DeliveryPlan(BaseModel):
    """Everything one AlertRequested fans out to."""

    model_config = ConfigDict(frozen=True)

    deliveries: tuple[PlannedDelivery, ...] = ()
    failures: tuple[PlanFailure, ...] = ()


_URGENCY_RANK = {Urgency.URGENT: 0, Urgency.NORMAL: 1, Urgency.LOW: 2}
# Signals that come from bulk streams (intent files): of one urgency, they go after the others.
_BULK_SIGNALS = frozenset({Signal.INTENT_SURGE})


def priority(alert: AlertRequested) -> int:
    """Return the send order of an alert's deliveries: lower goes first at a destination.

    By urgency, then real-time before bulk: a Tier 1 surge may be as urgent as a meeting request,
    but a file of them must not hold the meeting request back.
    """
    return 2 * _URGENCY_RANK[alert.urgency] + (alert.signal in _BULK_SIGNALS)


def idempotency_key(alert_id: str, recipient_id: str, channel: DeliveryChannel) -> str:
    """Return the key that makes a redelivered request notify each target at most once."""
    return f"{alert_id}:{recipient_id}:{channel.value}"


def plan_deliveries(
    alert: AlertRequested, *, directory: Directory, now: datetime, transports: Transports
) -> DeliveryPlan:
    """Plan the deliveries of an alert to its recipients and extra channels."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    deliveries: dict[str, PlannedDelivery] = {}
    failures: list[PlanFailure] = []
    for recipient_id in dict.fromkeys(alert.recipient_ids):
        person = directory.get(recipient_id)
        if person is None:
            failures.append(_failure(alert, recipient_id, "unknown recipient"))
            continue
        if not person.active:
            failures.append(_failure(alert, recipient_id, "recipient is inactive"))
            continue
        for delivery in _plan_person(alert, person, directory, now, transports):
            deliveries.setdefault(delivery.idempotency_key, delivery)
    for channel_id in dict.fromkeys(alert.channel_ids):
        planned, failure = _plan_channel(alert, channel_id, directory, transports)
        for delivery in planned:
            deliveries.setdefault(delivery.idempotency_key, delivery)
        if failure is not None:
            failures.append(failure)
    return DeliveryPlan(deliveries=tuple(deliveries.values()), failures=tuple(failures))


def channels_for(alert: AlertRequested, person: Person) -> tuple[DeliveryChannel, ...]:
    """Return the person's channels for this alert: by alert kind, then signal, then default."""
    prefs = person.preferences
    keys = [alert.kind.value] + ([alert.signal.value] if alert.signal else [])
    chosen = next((prefs.channels_by_kind[k] for k in keys if k in prefs.channels_by_kind), None)
    names = chosen if chosen else prefs.channels
    return tuple(DeliveryChannel(name) for name in dict.fromkeys(names))


def in_quiet_hours(person: Person, at: datetime) -> bool:
    """Return True when `at` falls in the person's quiet hours, in their own time zone."""
    quiet = person.preferences.quiet_hours
    if quiet is None:
        return False
    return _in_window(at.astimezone(person.zone).time(), quiet)


def quiet_hours_end(person: Person, at: datetime) -> datetime:
    """Return the first instant after `at` when the person's quiet hours are over."""
    quiet = person.preferences.quiet_hours
    if quiet is None or not _in_window(at.astimezone(person.zone).time(), quiet):
        return at
    local = at.astimezone(person.zone)
    end = datetime.combine(local.date(), quiet.end, tzinfo=person.zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=person.zone)
    # Through UTC: an end inside a DST gap resolves with the pre-transition offset.
    return end.astimezone(at.tzinfo)


def available_again(person: Person, at: datetime) -> datetime:
    """Return the first instant from `at` on when the person is neither away nor in quiet hours."""
    for _ in range(len(person.out_of_office) + 1):  # back-to-back periods chain
        ends = [p.end for p in person.out_of_office if p.start <= at < p.end]
        if not ends:
            break
        at = max(ends)
    return quiet_hours_end(person, at)


def _in_window(local: time, quiet: QuietHours) -> bool:
    if quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end  # wraps past midnight


def _plan_person(
    alert: AlertRequested,
    person: Person,
    directory: Directory,
    now: datetime,
    transports: Transports,
) -> list[PlannedDelivery]:
    digest_on = person.preferences.digest != "off"
    if alert.urgency is Urgency.LOW and digest_on:
        return _for_person(alert, person, transports, timing=Timing.DIGEST)
    away = person.is_out_of_office(now)
    if not away and not in_quiet_hours(person, now):
        return _for_person(alert, person, transports)
    if alert.urgency is Urgency.URGENT:
        cover = _cover(person, directory, now)
        # Quiet hours give way to a cover for Tier 1 only; out of office, any urgent item goes
        # to the cover, or else reaches the person wherever they are.
        if cover is None or (not away and alert.tier is not Tier.T1):
            return _for_person(alert, person, transports)
        # The cover acts now; the person still finds the item when they are back.
        return _for_person(alert, cover, transports, on_behalf_of=person.id) + _deferred(
            alert, person, transports, now, digest_on=digest_on
        )
    return _deferred(alert, person, transports, now, digest_on=digest_on)


def _deferred(
    alert: AlertRequested,
    person: Person,
    transports: Transports,
    now: datetime,
    *,
    digest_on: bool,
) -> list[PlannedDelivery]:
    if digest_on:
        return _for_person(alert, person, transports, timing=Timing.DIGEST)
    return _for_person(
        alert, person, transports, timing=Timing.LATER, not_before=available_again(person, now)
    )


def _cover(person: Person, directory: Directory, now: datetime) -> Person | None:
    """The person's cover, unless there is none at work: inactive, or away too."""
    if person.cover_id is None:
        return None
    cover = directory.get(person.cover_id)
    if cover is None or not cover.active or cover.is_out_of_office(now):
        return None
    return cover


def _for_person(
    alert: AlertRequested,
    person: Person,
    transports: Transports,
    *,
    timing: Timing = Timing.NOW,
    not_before: datetime | None = None,
    on_behalf_of: str | None = None,
) -> list[PlannedDelivery]:
    planned: list[PlannedDelivery] = []
    targets = _person_targets(person, channels_for(alert, person), transports)
    for channel, destination in targets.items():
        planned.append(
            PlannedDelivery(
                alert_id=alert.alert_id,
                recipient_id=person.id,
                channel=channel,
                destination=destination,
                idempotency_key=idempotency_key(alert.alert_id, person.id, channel),
                timing=timing,
                not_before=not_before,
                on_behalf_of=on_behalf_of,
            )
        )
    return planned


def _person_targets(
    person: Person, wanted: Iterable[DeliveryChannel], transports: Transports
) -> dict[DeliveryChannel, str]:
    targets: dict[DeliveryChannel, str] = {}
    for channel in wanted:
        # Without a Slack account, email is the one address everybody has.
        effective = (
            DeliveryChannel.EMAIL
            if channel is DeliveryChannel.SLACK and person.slack_user_id is None
            else channel
        )
        if effective is DeliveryChannel.SLACK and transports.slack and person.slack_user_id:
            targets.setdefault(effective, person.slack_user_id)
        elif effective is DeliveryChannel.EMAIL and transports.email:
            targets.setdefault(effective, person.email)
        else:
            targets.setdefault(DeliveryChannel.LOG, person.id)
    return targets


def _plan_channel(
    alert: AlertRequested, channel_id: str, directory: Directory, transports: Transports
) -> tuple[list[PlannedDelivery], PlanFailure | None]:
    recipient_id = f"{CHANNEL_RECIPIENT_PREFIX}{channel_id}"
    channel = directory.channel(channel_id)
    if channel is None:
        return [], _failure(alert, recipient_id, "unknown channel")
    targets: dict[DeliveryChannel, str] = {}
    if channel.slack_channel:
        if transports.slack:
            targets[DeliveryChannel.SLACK] = channel.slack_channel
        else:
            targets.setdefault(DeliveryChannel.LOG, recipient_id)
    if channel.email:
        if transports.email:
            targets[DeliveryChannel.EMAIL] = channel.email
        else:
            targets.setdefault(DeliveryChannel.LOG, recipient_id)
    if not targets:
        return [], _failure(alert, recipient_id, "channel has no Slack channel or email")
    planned = [
        PlannedDelivery(
            alert_id=alert.alert_id,
            recipient_id=recipient_id,
            channel=kind,
            destination=destination,
            idempotency_key=idempotency_key(alert.alert_id, recipient_id, kind),
        )
        for kind, destination in targets.items()
    ]
    return planned, None


def _failure(alert: AlertRequested, recipient_id: str, error: str) -> PlanFailure:
    return PlanFailure(alert_id=alert.alert_id, recipient_id=recipient_id, error=error)
