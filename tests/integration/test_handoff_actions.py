"""Actions on a handoff over the real services: Slack clicks, the API, routing, clocks, read models.

Ava (AE, tier 1, cover Ben) gets a meeting request at her account; Sam manages the AEs.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from handoff_actions_stack import Stack, handoff_actions_stack

from slack_server import ApiCall, Received
from tandem_shared.events import EventType

pytestmark = pytest.mark.integration

AVA, BEN, CHLOE, DAN = "U0AVA0001", "U0BEN0002", "U0CHL0003", "U0DAN0004"
MIA = "U0MIA0007"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with handoff_actions_stack(infra, tmp_path_factory.mktemp("actions-config")) as running:
        yield running


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def updates_of(stack: Stack, message: Received) -> list[ApiCall]:
    """Return the chat.update calls of one posted message, in order."""
    return [
        c
        for c in stack.slack.of("chat.update")
        if (c.arguments["channel"], c.arguments["ts"]) == (message.channel, message.ts)
    ]


async def test_accept_in_slack_then_a_refused_click_a_double_click_and_a_reject(
    stack: Stack,
) -> None:
    key = stack.account("acme")
    await stack.listed_tier1(key)
    handoff = await stack.meeting(key)
    message = await stack.message_to(AVA, handoff)
    assert action_ids(message.blocks)[:5] == [
        "handoff:acknowledge",
        "handoff:accept",
        "handoff:reject",
        "handoff:hand_on_cover",
        "handoff:hand_on_pool",
    ]

    # Chloé is not Ava's cover nor her manager: told so, only her, and nothing is published.
    refused = await stack.click(CHLOE, message, "handoff:accept")
    assert refused.status_code == 200
    [ephemeral] = await stack.wait(lambda: stack.slack.of("chat.postEphemeral"))
    assert ephemeral.arguments["user"] == CHLOE
    assert "Only its assignee or the assignee's cover may accept" in ephemeral.arguments["text"]

    # Mia (marketing) was told too: her FYI has no controls, and is updated like Ava's message.
    [fyi] = await stack.wait(lambda: [r for r in stack.slack.to(MIA) if "Acme" in (r.text or "")])
    assert [a for a in action_ids(fyi.blocks) if a.startswith("handoff:")] == []

    # Ava accepts: the router takes it, the clock pauses, every message about the handoff says
    # so in place; Accept goes from Ava's.
    await stack.click(AVA, message, "handoff:accept")
    [taken] = await stack.events.wait_for(handoff, EventType.HANDOFF_ACTION_TAKEN)
    assert (taken.data["actor_id"], taken.data["action"]) == ("ava.ae", "accept")
    await stack.events.wait_for(handoff, EventType.SLA_ACKNOWLEDGED)
    [update] = await stack.wait(lambda: updates_of(stack, message))
    assert (update.arguments["channel"], update.arguments["ts"]) == (AVA, message.ts)
    assert "*Ava Thompson*: Accepted · via slack" in texts(update.blocks)
    remaining = action_ids(update.blocks)
    assert "handoff:accept" not in remaining and "handoff:acknowledge" not in remaining
    assert "handoff:reject" in remaining
    [told] = await stack.wait(lambda: updates_of(stack, fyi))
    assert told.arguments["channel"] == MIA
    assert "*Ava Thompson*: Accepted · via slack" in texts(told.blocks)
    assert [a for a in action_ids(told.blocks) if a.startswith("handoff:")] == []
    view = await stack.handoff(handoff, lambda h: h.get("action") is not None)
    assert view["action"]["status"] == "accepted"
    assert (view["action"]["by"], view["action"]["via"]) == ("ava.ae", "slack")
    assert view["sla"]["acknowledged_at"] is not None

    # A second click on Accept changes nothing and is answered politely.
    await stack.click(AVA, message, "handoff:accept")
    second = await stack.wait(lambda: stack.slack.of("chat.postEphemeral")[1:])
    assert second[0].arguments["user"] == AVA
    assert "already" in second[0].arguments["text"]
    await stack.events.caught_up()
    assert len(stack.outcomes(handoff)) == 1

    # Reject opens the modal; its submission hands the handoff on without Ava.
    await stack.click(AVA, message, "handoff:reject")
    [modal] = await stack.wait(lambda: stack.slack.of("views.open"))
    view_def = modal.arguments["view"]
    assert view_def["callback_id"] == "handoff_reject"
    await stack.interact(
        {
            "type": "view_submission",
            "user": {"id": AVA},
            "view": {
                **view_def,
                "state": {
                    "values": {
                        "reason": {"reason": {"selected_option": {"value": "wrong_person"}}},
                        "note": {"note": {"value": "Dan met them last week"}},
                    }
                },
            },
        }
    )
    decided = await stack.events.wait_for(handoff, EventType.ROUTING_DECIDED, count=2)
    new_owner = decided[-1].data["assignee_id"]
    assert new_owner != "ava.ae"
    assert any(
        "rejected (wrong person): Dan met them last week" in line
        for line in decided[-1].data["explanation"]
    )
    # The clock restarts for the new owner; the read model follows; Ava's message loses its buttons.
    await stack.events.wait_for(
        handoff, EventType.SLA_STARTED, where=lambda e: e.data["assignee_id"] == new_owner
    )
    view = await stack.handoff(handoff, lambda h: h["assignee_id"] == new_owner)
    assert view["action"]["status"] == "assigned" and view["action"]["last_action"] == "reject"
    updates = await stack.wait(lambda: updates_of(stack, message)[1:])
    assert action_ids(updates[-1].blocks) in ([], ["open_crm"])
    assert "now with" in texts(updates[-1].blocks)
    mias = await stack.wait(lambda: updates_of(stack, fyi)[1:])
    assert "now with" in texts(mias[-1].blocks)


async def test_api_actions_two_people_at_once_and_a_manager_reassigning(stack: Stack) -> None:
    key = stack.account("globex")
    await stack.listed_tier1(key)
    handoff = await stack.meeting(key)
    message = await stack.message_to(AVA, handoff)

    # Chloé's key: refused at once with the reason; Ava's: acknowledged, the clock pauses.
    refused = await stack.act("chloe.ae", handoff, action="accept")
    assert refused.status_code == 403
    assert "Only its assignee or the assignee's cover" in refused.json()["detail"]
    asked = await stack.act("ava.ae", handoff, action="acknowledge")
    assert asked.status_code == 202
    [ack] = await stack.events.wait_for(handoff, EventType.HANDOFF_ACTION_TAKEN)
    assert (ack.data["action"], ack.data["via"]) == ("acknowledge", "api")
    await stack.events.wait_for(handoff, EventType.SLA_ACKNOWLEDGED)
    view = await stack.handoff(handoff, lambda h: h.get("action") is not None)
    assert (view["action"]["status"], view["action"]["via"]) == ("acknowledged", "api")
    # The action by its id: who asked, when, and the router's answer.
    path = f"/v1/handoffs/{handoff}/actions/{asked.json()['action_id']}"
    done = await stack.gateway_json("ava.ae", path, lambda a: a["status"] == "taken")
    assert (done["actor_id"], done["via"], done["code"]) == ("ava.ae", "api", "done")
    assert done["requested_at"] is not None and done["decided_at"] is not None
    assert (await stack.act_as("chloe.ae", "GET", path)).status_code == 404  # not hers to read

    # Ava and Ben (her cover) accept at the same moment: one is taken, the other refused.
    before = len(stack.slack.of("chat.postEphemeral"))
    await asyncio.gather(
        stack.click(AVA, message, "handoff:accept"),
        stack.click(BEN, message, "handoff:accept", channel=BEN),
    )
    outcomes = await stack.wait(
        lambda: len(stack.outcomes(handoff)) >= 3 and stack.outcomes(handoff)
    )
    answers = sorted((e.data["actor_id"], e.type) for e in outcomes[1:])
    assert sorted(t for _, t in answers) == [
        EventType.HANDOFF_ACTION_REFUSED,
        EventType.HANDOFF_ACTION_TAKEN,
    ]
    [loser] = [actor for actor, t in answers if t == EventType.HANDOFF_ACTION_REFUSED]
    [lost] = [e for e in outcomes[1:] if e.type == EventType.HANDOFF_ACTION_REFUSED]
    path = f"/v1/handoffs/{handoff}/actions/{lost.data['action_id']}"
    refusal = await stack.gateway_json("sam.manager", path, lambda a: a["status"] == "refused")
    assert (refusal["actor_id"], refusal["via"]) == (loser, "slack")
    # Already accepted, or (Ben won, so the handoff is his) no longer Ava's to accept.
    assert refusal["code"] == lost.data["code"] in ("already_done", "not_permitted")
    assert refusal["message"] == lost.data["message"] and refusal["decided_at"] is not None
    [told] = await stack.wait(lambda: stack.slack.of("chat.postEphemeral")[before:])
    assert told.arguments["user"] == {"ava.ae": AVA, "ben.ae": BEN}[loser]

    # Sam (the AEs' manager) reassigns it to Chloé: she is alerted, her clock starts.
    moved = await stack.act("sam.manager", handoff, action="reassign", target_id="chloe.ae")
    assert moved.status_code == 202
    await stack.events.wait_for(
        handoff, EventType.ROUTING_DECIDED, where=lambda e: e.data["assignee_id"] == "chloe.ae"
    )
    await stack.events.wait_for(
        handoff, EventType.SLA_STARTED, where=lambda e: e.data["assignee_id"] == "chloe.ae"
    )
    hers = await stack.message_to(CHLOE, handoff)
    assert "handoff:accept" in action_ids(hers.blocks)
    view = await stack.handoff(handoff, lambda h: h["assignee_id"] == "chloe.ae")
    assert (view["action"]["last_action"], view["action"]["by"]) == ("reassign", "sam.manager")


async def test_a_manager_assigns_a_conflicted_handoff_from_slack(stack: Stack) -> None:
    key = stack.account("initech")
    await stack.crm_owner(key, "hs-owner-102")  # the CRM says Ben, the TAL says Ava
    await stack.listed_tier1(key)
    handoff = await stack.meeting(key, routed=False)
    conflict = await stack.message_to("U0SAM0008", handoff)
    assert action_ids(conflict.blocks)[0] == "handoff:assign"
    refused = await stack.act("ava.ae", handoff, action="accept")
    assert refused.status_code in (403, 404)  # the read model has no owner for it yet
    await stack.click("U0SAM0008", conflict, "handoff:assign", selected_option={"value": "dan.sdr"})
    [decided] = await stack.events.wait_for(handoff, EventType.ROUTING_DECIDED)
    assert decided.data["assignee_id"] == "dan.sdr"
    await stack.message_to(DAN, handoff)
    view = await stack.handoff(handoff, lambda h: h.get("action") is not None)
    assert (view["assignee_id"], view["action"]["last_action"]) == ("dan.sdr", "assign")


async def test_an_email_link_shows_a_page_a_scanner_cannot_act_on_then_acts_once(
    stack: Stack,
) -> None:
    key = stack.account("umbrella")
    await stack.listed_tier1(key)
    handoff = await stack.meeting(key)
    [text] = await stack.wait(lambda: stack.mailbox.text_about("ava@tandem.example", handoff))
    links = dict(
        re.findall(r"^- (.+?): (http://alerts/\S+)$", text.replace("\r\n", "\n"), re.MULTILINE)
    )
    assert {"Acknowledge", "Accept", "Reject…", "Hand on to my cover"} <= set(links)
    accept = links["Accept"].removeprefix("http://alerts")

    # A link scanner (or a preview) fetches it: a page with a form, and nothing happens.
    scanned = await stack.alerts.get(accept)
    assert scanned.status_code == 200
    assert '<form method="post"' in scanned.text and "Accept this handoff?" in scanned.text
    await stack.events.caught_up()
    assert stack.outcomes(handoff) == []

    # Ava confirms: the router takes it, by email; the form posted again changes nothing.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    done = await stack.alerts.post(accept, content=b"", headers=form)
    assert done.status_code == 200 and "sent to Tandem" in done.text
    [taken] = await stack.events.wait_for(handoff, EventType.HANDOFF_ACTION_TAKEN)
    assert (taken.data["action"], taken.data["via"]) == ("accept", "email")
    view = await stack.handoff(handoff, lambda h: h.get("action") is not None)
    assert (view["action"]["status"], view["action"]["via"]) == ("accepted", "email")
    again = await stack.alerts.post(accept, content=b"", headers=form)
    assert again.status_code == 409 and "used already" in again.text
    forged = await stack.alerts.get(accept[:-3] + "abc")
    assert forged.status_code == 400
    wrong_type = await stack.alerts.post(links["Reject…"].removeprefix("http://alerts"), json={})
    assert wrong_type.status_code == 415
    await stack.events.caught_up()
    assert len(stack.outcomes(handoff)) == 1


async def test_a_rep_out_of_office_in_slack_sends_the_next_tier1_to_their_cover(
    stack: Stack,
) -> None:
    answer = await stack.command("U0OONA010", "ooo until friday")
    assert answer.status_code == 200
    assert answer.json()["response_type"] == "ephemeral"
    assert "ben.ae covers" in answer.json()["text"]
    await stack.router_knows_availability("oona.ae", away=True)
    mine = "/v1/people/oona.ae/availability"
    shown = await stack.gateway_json("oona.ae", mine, lambda a: a["out_of_office"] != [])
    assert (shown["away_now"], shown["cover_id"]) == (True, "ben.ae")

    away = stack.account("hooli")
    await stack.listed_tier1(away, ae_id="oona.ae")
    handoff = await stack.meeting(away)
    [decided] = await stack.events.wait_for(handoff, EventType.ROUTING_DECIDED)
    assert decided.data["assignee_id"] == "ben.ae"
    assert any("oona.ae is out of office until" in line for line in decided.data["explanation"])
    await stack.message_to(BEN, handoff)

    # Back, through the API with her own key: the next tier 1 meeting is hers again.
    back = await stack.act_as(
        "oona.ae", "PUT", "/v1/people/oona.ae/availability", json={"out_of_office": []}
    )
    assert back.status_code == 202
    someone_else = await stack.act_as(
        "oona.ae", "PUT", "/v1/people/ben.ae/availability", json={"capacity": 1}
    )
    assert someone_else.status_code == 403
    await stack.router_knows_availability("oona.ae", away=False)
    shown = await stack.gateway_json("sam.manager", mine, lambda a: a["out_of_office"] == [])
    assert shown["away_now"] is False and shown["changed_at"] is not None
    home = stack.account("pied")
    await stack.listed_tier1(home, ae_id="oona.ae")
    handoff = await stack.meeting(home)
    [decided] = await stack.events.wait_for(handoff, EventType.ROUTING_DECIDED)
    assert decided.data["assignee_id"] == "oona.ae"
