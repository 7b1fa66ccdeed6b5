"""Every Kafka topic Tandem uses, in one place."""

from __future__ import annotations

from dataclasses import dataclass

CRM = "tandem.crm"
ENGAGEMENT = "tandem.engagement"
INTENT = "tandem.intent"
TAL = "tandem.tal"
ROUTING = "tandem.routing"
ALERT_REQUESTS = "tandem.alert-requests"
SLA = "tandem.sla"
ALERT_DELIVERIES = "tandem.alert-deliveries"
HANDOFF_ACTIONS = "tandem.handoff-actions"
# Availability set at run time (out of office, cover, capacity, working hours), keyed by person.
PEOPLE = "tandem.people"

# Bulk streams (intent files, CRM sync) run in the consumers' bulk lane: they never take every
# processing slot, so real-time work (meeting requests, handoffs, alerts, acks) never queues
# behind them. Every other topic is real-time.
BULK_TOPICS = frozenset({CRM, INTENT})

# Consumer groups, one per service that consumes.
ROUTER_GROUP = "router"
SLA_GROUP = "sla-monitor"
ALERTS_GROUP = "alerts"
GATEWAY_GROUP = "api-gateway"
CONSUMER_GROUPS = (ROUTER_GROUP, SLA_GROUP, ALERTS_GROUP, GATEWAY_GROUP)


def dead_letter_topic(group: str) -> str:
    """Return the dead-letter topic of a consumer group."""
    return f"tandem.dlq.{group}"


@dataclass(frozen=True)
class TopicSpec:
    """A topic with the partition count it is created with."""

    name: str
    partitions: int


# Account-scoped topics get more partitions: consumers scale by them.
DATA_TOPICS = (
    TopicSpec(CRM, 6),
    TopicSpec(ENGAGEMENT, 6),
    TopicSpec(INTENT, 6),
    TopicSpec(TAL, 3),
    TopicSpec(ROUTING, 6),
    TopicSpec(ALERT_REQUESTS, 6),
    TopicSpec(SLA, 6),
    TopicSpec(ALERT_DELIVERIES, 3),
    TopicSpec(HANDOFF_ACTIONS, 3),
    TopicSpec(PEOPLE, 3),
)
ALL_TOPICS = DATA_TOPICS + tuple(TopicSpec(dead_letter_topic(g), 1) for g in CONSUMER_GROUPS)
