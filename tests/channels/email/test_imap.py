"""IMAP ingest against a real dovecot on 127.0.0.1: IDLE pushes, \\Seen after storing, and neither a
server restart nor a gateway restart loses or doubles a message."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from inbox import tables as t
from tests.channels.email.conftest import Dovecot, mail
from tests.harness import Gateway, start_gateway


def imap_config(server: Dovecot) -> dict:
    return {
        "address": "help@demo.switchboard.test",
        "imap": {
            "host": server.host,
            "port": server.port,
            "tls": False,
            "user": server.user,
            "command_timeout": 5,
            "idle_seconds": 2,
            "reconnect_min": 0.05,
            "reconnect_max": 0.3,
        },
        "imap_password": server.password,  # top level: withheld from non-admins like every *password
    }


async def stored_texts(gw: Gateway, channel_id: int) -> list[str]:
    async with gw.container.db.read() as session:
        rows = await session.scalars(
            select(t.Message.text).where(t.Message.channel_id == channel_id).order_by(t.Message.id)
        )
        return [r or "" for r in rows]


def seen_flags(server: Dovecot) -> int:
    """How many messages carry \\Seen (maildir keeps flags in the file name: ``:2,S``)."""
    return sum(1 for f in (server.maildir / "cur").iterdir() if "S" in f.name.rpartition(":2,")[2])


async def test_imap_ingest_survives_server_and_gateway_restarts(tmp_path: Path, dovecot: Dovecot):
    gw = await start_gateway(tmp_path)
    stream = await gw.stream()
    await stream.ready()

    def created(text: str):
        return lambda e: e["type"] == "message.created" and e["data"]["message"]["text"] == text

    status, channel = await gw.api(
        "POST",
        "/channels",
        json_body={"inbox_id": 1, "kind": "email", "name": "IMAP", "config": imap_config(dovecot)},
    )
    assert status == 201
    cid = channel["id"]
    _, agent = await gw.user("agent-imap@example.org", "agent", [1])
    _, listed = await gw.api("GET", "/channels", token=agent)
    [seen] = [c for c in listed["items"] if c["id"] == cid]
    assert "imap_password" not in seen["config"] and seen["config"]["imap"]["user"] == dovecot.user
    try:
        dovecot.deliver(mail("one", "one", sender="c1@example.org"))
        dovecot.deliver(mail("two", "two", sender="c2@example.org"))
        await stream.next(created("one"))
        await stream.next(created("two"))
        dovecot.deliver(mail("pushed", "pushed", sender="c3@example.org"))  # arrives through IDLE
        await stream.next(created("pushed"))
        poller = (await gw.container.adapters.get(cid)).poller  # type: ignore[attr-defined]
        while seen_flags(dovecot) < 3:  # \Seen is set just after the store: wait for that pass
            poller.caught_up.clear()
            await asyncio.wait_for(poller.caught_up.wait(), 10)
        assert seen_flags(dovecot) == 3

        dovecot.stop()
        dovecot.deliver(mail("during outage", "during outage", sender="c4@example.org"))
        dovecot.start()
        await stream.next(created("during outage"))  # reconnected with back-off, caught up by UID
        assert await stored_texts(gw, cid) == ["one", "two", "pushed", "during outage"]
        poller = (await gw.container.adapters.get(cid)).poller  # type: ignore[attr-defined]
        while True:  # a pass that ends after its \Seen flag: the one that stored it recorded its UID
            poller.caught_up.clear()
            await asyncio.wait_for(poller.caught_up.wait(), 10)
            if seen_flags(dovecot) == 4:
                break
    finally:
        await gw.close()

    dovecot.deliver(mail("while gateway down", "while gateway down", sender="c5@example.org"))
    received: list[str] = []
    stored = asyncio.Event()

    def count(container):
        original = container.pipeline.receive

        async def counting(inbound):
            result = await original(inbound)
            received.append(inbound.text)
            stored.set()
            return result

        container.adapters.bind(counting, container.outbox.apply_status)

    gw2 = await start_gateway(tmp_path, customize=count)  # same data dir: same database and UID state
    try:
        await asyncio.wait_for(stored.wait(), 10)
        await asyncio.wait_for(gw2.container.adapters.get(cid), 5)
        adapter = await gw2.container.adapters.get(cid)
        await asyncio.wait_for(adapter.poller.caught_up.wait(), 10)  # type: ignore[attr-defined]
        assert received == ["while gateway down"]  # nothing read twice
        assert await stored_texts(gw2, cid) == ["one", "two", "pushed", "during outage", "while gateway down"]
        assert seen_flags(dovecot) == 5
    finally:
        await gw2.close()


async def test_imap_polling_when_idle_is_not_used(tmp_path: Path, dovecot: Dovecot):
    gw = await start_gateway(tmp_path)
    try:
        config = imap_config(dovecot)
        config["imap"] |= {"use_idle": False, "poll_seconds": 0.2}
        status, channel = await gw.api(
            "POST", "/channels", json_body={"inbox_id": 1, "kind": "email", "name": "Poll", "config": config}
        )
        assert status == 201
        stream = await gw.stream()
        await stream.ready()
        dovecot.deliver(mail("polled", "found by polling", sender="p@example.org"))
        event = await stream.next(lambda e: e["type"] == "message.created")
        assert event["data"]["message"]["text"] == "found by polling"
        assert event["data"]["message"]["channel_id"] == channel["id"]
    finally:
        await gw.close()
