#!/bin/bash
# Creates Tandem's topics on the compose broker (one node: replication factor 1).
# The list mirrors shared/src/tandem_shared/topics.py; deploy/validate.sh fails when they differ.
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP_SERVERS:-kafka:9092}"
KAFKA_TOPICS=/opt/kafka/bin/kafka-topics.sh

# name partitions
TOPICS="
tandem.crm 6
tandem.engagement 6
tandem.intent 6
tandem.tal 3
tandem.routing 6
tandem.alert-requests 6
tandem.sla 6
tandem.alert-deliveries 3
tandem.handoff-actions 3
tandem.people 3
tandem.dlq.router 1
tandem.dlq.sla-monitor 1
tandem.dlq.alerts 1
tandem.dlq.api-gateway 1
"

while read -r name partitions; do
  [ -n "${name}" ] || continue
  "${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --create --if-not-exists \
    --topic "${name}" --partitions "${partitions}" --replication-factor 1 \
    --config min.insync.replicas=1
done <<< "${TOPICS}"

echo "topics on ${BOOTSTRAP}:"
"${KAFKA_TOPICS}" --bootstrap-server "${BOOTSTRAP}" --list
