"""Automatic assignment through a running gateway: round robin over online agents within capacity,
a waiting queue that drains as agents free up or come online, release when an agent is offline."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.harness import start_gateway
from tests.routing.support import all_conversations, conversation, create, online_agent


async def _assignees(gw, ids: list[int]) -> Counter:
    by_id = {c["id"]: c for c in await all_conversations(gw)}
    return Counter(by_id[i]["assignee_id"] for i in ids)


async def test_round_robin_spreads_100_conversations_evenly_over_online_agents(
    tmp_path: Path, database_url: str | None
):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        await _round_robin(gw)
    finally:
        await gw.close()


async def _round_robin(gw) -> None:
    agents = [(await online_agent(gw, f"rr{i}@demo.test"))[0] for i in range(4)]
    offline, _ = await gw.user("rr-offline@demo.test", inbox_ids=[1])  # a member, but not online
    policy = await create(
        gw, "/assignment-policies", {"inbox_id": 1, "strategy": "round_robin", "capacity": 30}
    )
    loop = await gw.loopback()
    ids = [(await loop.customer_writes(f"+1555020{i:04d}", "hello")).conversation_id for i in range(100)]

    counts = await _assignees(gw, ids)
    assert counts == {a: 25 for a in agents}
    assert offline not in counts and None not in counts
    status, listed = await gw.api("GET", "/assignment-policies")
    assert listed["items"][0]["id"] == policy["id"] and listed["items"][0]["waiting"] == 0


async def test_capacity_queue_drains_as_agents_free_up(gateway):
    gw = gateway
    stream = await gw.stream()
    await stream.ready()
    ann, ann_token = await online_agent(gw, "ann@demo.test")
    bob, bob_token = await online_agent(gw, "bob@demo.test")
    policy = await create(
        gw,
        "/assignment-policies",
        {"inbox_id": 1, "strategy": "least_busy", "capacity": 2, "agent_capacity": {str(bob): 1}},
    )
    loop = await gw.loopback()
    ids = [(await loop.customer_writes(f"+1555030{i:04d}", "hi")).conversation_id for i in range(6)]
    assert await _assignees(gw, ids) == {ann: 2, bob: 1, None: 3}
    status, p = await gw.api("GET", "/assignment-policies")
    assert p["items"][0]["waiting"] == 3
    assignee = {i: (await conversation(gw, i))["assignee_id"] for i in ids}
    waiting = [i for i in ids if assignee[i] is None]

    # Ann resolves one: the oldest waiting conversation is hers at once.
    mine = next(i for i in ids if assignee[i] == ann)
    status, _ = await gw.api(
        "PATCH", f"/conversations/{mine}", json_body={"status": "resolved"}, token=ann_token
    )
    assert status == 200
    event = await stream.next(
        lambda e: (
            e["type"] == "conversation.updated"
            and e["data"]["conversation"]["assignee_id"] is not None
            and e["conversation_id"] in waiting
        )
    )
    assert event["conversation_id"] == waiting[0]
    assert event["data"]["conversation"]["assignee_id"] == ann

    # A third agent comes online and takes the next two, in order.
    cy, cy_token = await gw.user("cy@demo.test", inbox_ids=[1])
    await gw.api("PATCH", "/users/me", token=cy_token, json_body={"availability": "online"})
    taken: list[int] = []
    while len(taken) < 2:
        event = await stream.next(
            lambda e: e["type"] == "conversation.updated" and e["data"]["conversation"]["assignee_id"] == cy
        )
        taken.append(event["conversation_id"])
    assert taken == waiting[1:]
    status, p = await gw.api("GET", "/assignment-policies")
    assert p["items"][0]["waiting"] == 0

    # Bob goes offline; a new message in his conversation releases it to someone with room.
    bobs = next(i for i in ids if assignee[i] == bob)
    await gw.api("PATCH", "/users/me", token=bob_token, json_body={"availability": "offline"})
    await gw.api("PATCH", f"/assignment-policies/{policy['id']}", json_body={"capacity": 3})
    contact = ids.index(bobs)
    await loop.customer_writes(f"+1555030{contact:04d}", "anyone there?")
    assert (await conversation(gw, bobs))["assignee_id"] in (ann, cy)


async def test_offline_agents_keep_their_conversations_when_release_is_off(gateway):
    gw = gateway
    dee, dee_token = await online_agent(gw, "dee@demo.test")
    await create(gw, "/assignment-policies", {"inbox_id": 1, "release_on_offline": False})
    loop = await gw.loopback()
    got = await loop.customer_writes("+15550400001", "hi")
    assert (await conversation(gw, got.conversation_id))["assignee_id"] == dee
    await online_agent(gw, "eve@demo.test")
    await gw.api("PATCH", "/users/me", token=dee_token, json_body={"availability": "offline"})
    await loop.customer_writes("+15550400001", "still there?")
    assert (await conversation(gw, got.conversation_id))["assignee_id"] == dee


async def test_availability_and_policies_are_validated(gateway):
    gw = gateway
    status, err = await gw.api("PATCH", "/users/me", json_body={"availability": "sleeping"})
    assert status == 422 and err["error"]["details"][0]["field"] == "availability"
    status, err = await gw.api("POST", "/assignment-policies", json_body={"inbox_id": 1, "team_id": 1})
    assert status == 422 and "exactly one" in err["error"]["message"]
    status, err = await gw.api("POST", "/assignment-policies", json_body={"team_id": 99})
    assert status == 422 and err["error"]["details"][0]["field"] == "team_id"
    _, agent_token = await gw.user("not-admin@demo.test", inbox_ids=[1])
    status, _ = await gw.api("POST", "/assignment-policies", json_body={"inbox_id": 1}, token=agent_token)
    assert status == 403
    await create(gw, "/assignment-policies", {"inbox_id": 1})
    status, err = await gw.api("POST", "/assignment-policies", json_body={"inbox_id": 1})
    assert status == 409


async def test_team_policy_assigns_within_the_team_a_rule_chose(gateway):
    gw = gateway
    support_agent, _ = await online_agent(gw, "sup@demo.test")
    billing_agent, _ = await online_agent(gw, "bill@demo.test")
    offline_agent, _ = await gw.user("off@demo.test", inbox_ids=[1])
    billing = await create(gw, "/teams", {"name": "Billing", "member_ids": [billing_agent]})
    await create(gw, "/assignment-policies", {"inbox_id": 1})
    await create(gw, "/assignment-policies", {"team_id": billing["id"], "strategy": "least_busy"})
    await create(
        gw,
        "/rules",
        {
            "name": "invoices",
            "conditions": [{"type": "text", "op": "contains", "value": "invoice"}],
            "actions": [{"type": "assign_team", "team_id": billing["id"]}],
        },
    )
    await create(
        gw,
        "/rules",
        {
            "name": "vip desk",
            "conditions": [{"type": "text", "op": "contains", "value": "vip"}],
            "actions": [{"type": "assign_agent", "user_id": offline_agent}],
        },
    )
    loop = await gw.loopback()
    invoice = await loop.customer_writes("+15550410001", "Where is my invoice?")
    other = await loop.customer_writes("+15550410002", "Hello")
    vip = await loop.customer_writes("+15550410003", "VIP here")
    assert (await conversation(gw, invoice.conversation_id))["assignee_id"] == billing_agent
    assert (await conversation(gw, other.conversation_id))["assignee_id"] in (support_agent, billing_agent)
    assert (await conversation(gw, vip.conversation_id))["assignee_id"] == offline_agent  # the rule's choice
