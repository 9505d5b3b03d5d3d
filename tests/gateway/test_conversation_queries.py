"""The conversation list and search as an agent pages through them, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import pytest_asyncio

import inbox.queries
from channels.base import LoopbackChannel
from tests.harness import Gateway, ManualClock, start_gateway


@pytest_asyncio.fixture
async def gw(tmp_path: Path, database_url: str | None, clock: ManualClock) -> AsyncIterator[Gateway]:
    gw = await start_gateway(tmp_path, database_url=database_url, clock=clock)
    yield gw
    await gw.close()


async def second_inbox(gw: Gateway) -> tuple[int, LoopbackChannel]:
    status, inbox = await gw.api("POST", "/inboxes", json_body={"name": "Returns"})
    assert status == 201, inbox
    status, channel = await gw.api(
        "POST", "/channels", json_body={"inbox_id": inbox["id"], "kind": "loopback", "name": "Returns desk"}
    )
    assert status == 201, channel
    adapter = await gw.container.adapters.get(channel["id"])
    assert isinstance(adapter, LoopbackChannel)
    return inbox["id"], adapter


async def every_page(gw: Gateway, path: str, limit: int, token: str | None = None) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        sep = "&" if "?" in path else "?"
        status, page = await gw.api(
            "GET", f"{path}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""), token=token
        )
        assert status == 200, page
        assert len(page["items"]) <= limit
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


async def test_paging_across_equal_timestamps_returns_every_conversation_once(
    gw: Gateway, clock: ManualClock
):
    inbox_2, returns = await second_inbox(gw)
    support = await gw.loopback()
    demo = set(await every_page(gw, "/conversations", 100))  # the demo's own conversation(s)
    # The clock stands still: many conversations share one last_activity_at, in both inboxes.
    same_time = [(await support.customer_writes(f"+1555100{i:04d}", "hi")).conversation_id for i in range(5)]
    same_time += [(await returns.customer_writes(f"+1555200{i:04d}", "hi")).conversation_id for i in range(4)]
    clock.advance(minutes=1)
    later = [(await returns.customer_writes(f"+1555300{i:04d}", "hi")).conversation_id for i in range(2)]
    later += [(await support.customer_writes(f"+1555400{i:04d}", "hi")).conversation_id for i in range(2)]

    newest_first = sorted(later, reverse=True) + sorted(same_time, reverse=True)
    for limit in (1, 2, 4, 100):
        every = await every_page(gw, "/conversations", limit)  # both inboxes merged
        assert len(every) == len(set(every)) and [c for c in every if c not in demo] == newest_first
        opened = await every_page(gw, "/conversations?status=open", limit)
        assert [c for c in opened if c not in demo] == newest_first
        in_returns = await every_page(gw, f"/conversations?inbox_id={inbox_2}", limit)
        assert in_returns == [c for c in newest_first if c in set(later[:2] + same_time[5:])]

    # An agent of the second inbox sees its conversations only.
    _, agent_token = await gw.user("returns@example.com", inbox_ids=[inbox_2])
    assert await every_page(gw, "/conversations", 3, token=agent_token) == in_returns


async def test_a_changed_cursor_is_refused(gw: Gateway):
    support = await gw.loopback()
    for i in range(3):
        await support.customer_writes(f"+1555500{i:04d}", "hi")
    status, page = await gw.api("GET", "/conversations?limit=1")
    assert status == 200 and page["next_cursor"]
    for cursor in ("not-a-cursor", "WyIyMDI2LTAzLTEwVDEyOjAwOjAwIiwgM10"):  # the second: a naive time
        status, body = await gw.api("GET", f"/conversations?limit=1&cursor={cursor}")
        assert status == 400, body


async def test_search_finds_text_in_the_middle_of_a_message_and_contacts(gw: Gateway):
    support = await gw.loopback()
    parcel = await support.customer_writes("+15556000001", "Hello, my PARCEL arrived broken today")
    zoe = await support.customer_writes("+15556000002", "hello there", name="Zoë Marsh")
    percent = await support.customer_writes("+15556000003", "I am 100% sure it was sent")
    other = await support.customer_writes("+15556000004", "something else entirely", name="Ben")

    async def found(q: str) -> set[int]:
        return set(await every_page(gw, f"/conversations?q={q}", 2))

    assert await found("rcel%20arr") == {parcel.conversation_id}  # inside words, across a space
    assert await found("Parcel") == {parcel.conversation_id}  # case does not matter
    assert await found("MARSH") == {zoe.conversation_id}  # the contact's name
    assert await found("hello") == {parcel.conversation_id, zoe.conversation_id}
    assert await found("100%25") == {percent.conversation_id}  # % is a character, not a wildcard
    assert await found("0%25%20s") == {percent.conversation_id}
    assert await found("nowhere%20to%20be%20found") == set()
    assert await found("zo") == {zoe.conversation_id}  # two letters: contacts only ...
    assert other.conversation_id not in await found("el")  # ... not the "else" in a message

    # Search keeps the other filters; list items carry their labels.
    status, _ = await gw.api(
        "PATCH",
        f"/conversations/{zoe.conversation_id}",
        json_body={"status": "resolved", "labels": ["VIP", "a"]},
    )
    assert status == 200
    _, page = await gw.api("GET", "/conversations?q=hello")
    assert {c["id"]: c["labels"] for c in page["items"]} == {
        zoe.conversation_id: ["a", "vip"],
        parcel.conversation_id: [],
    }
    assert set(await every_page(gw, "/conversations?q=hello&status=open", 2)) == {parcel.conversation_id}


async def test_a_common_term_pages_the_same_as_a_rare_one(
    gw: Gateway, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
):
    support = await gw.loopback()
    made = []
    for i in range(7):
        made.append(
            (await support.customer_writes(f"+1555700{i:04d}", f"about my refund, case {i}")).conversation_id
        )
        await support.customer_writes(f"+1555800{i:04d}", "unrelated")
        if i % 2:
            clock.advance(seconds=30)
    made.append((await support.customer_writes("+15559000000", "hi", name="Refund Rick")).conversation_id)
    exact = await every_page(gw, "/conversations?q=refund", 3)
    assert sorted(exact) == sorted(made) and len(exact) == len(set(exact))
    # With a tiny probe limit "refund" counts as common on SQLite: the newest conversations are checked
    # with LIKE (the window: all of them, a few, or enough for a page), the trigram index the rest.
    monkeypatch.setattr(inbox.queries, "FTS_PROBE_LIMIT", 2)
    for window in (1000, 3, 6, 12):
        monkeypatch.setattr(inbox.queries, "SEARCH_WINDOW", window)
        assert await every_page(gw, "/conversations?q=refund", 3) == exact, window


async def test_search_terms_are_text_not_query_syntax(gw: Gateway, monkeypatch: pytest.MonkeyPatch):
    """Whatever the term — FTS5 operators, quotes, LIKE wildcards — it is matched as plain text,
    the same way on both stores and on both of SQLite's search paths."""
    support = await gw.loopback()
    texts = [
        'she said "refund NOW" twice',
        "path C:\\temp\\a_b.txt",
        "50%_off* (NEAR) OR AND NOT",
        "text: column^filter {a b}",
        "plain words only",
    ]
    conversations = {}
    for i, body in enumerate(texts):
        conversations[body] = (await support.customer_writes(f"+1555600{i:04d}", body)).conversation_id
    terms = [
        '"refund',
        'd "re',
        "\\temp\\",
        "a_b",
        "%_o",
        "f* (NEAR) OR",
        "AND NOT",
        "text:",
        "^fil",
        "{a b}",
    ]
    terms += ["OR", "NOT", "*", '"', "ds only", "nowhere"]
    for term, probe_limit in [(term, limit) for term in terms for limit in (300, 0)]:
        # A probe limit of 0 sends every term with a match down SQLite's LIKE path.
        monkeypatch.setattr(inbox.queries, "FTS_PROBE_LIMIT", probe_limit)
        status, page = await gw.api("GET", "/conversations?" + urlencode({"q": term, "limit": 100}))
        assert status == 200, (term, page)
        expected = (
            {cid for body, cid in conversations.items() if term.strip().lower() in body.lower()}
            if len(term.strip()) >= 3
            else set()  # shorter terms match contact names only (none here: "Contact"-less loopback)
        )
        assert {c["id"] for c in page["items"]} & set(conversations.values()) == expected, (term, probe_limit)


async def test_unread_counts_per_inbox_team_and_view(gw: Gateway):
    async def counts() -> dict:
        status, body = await gw.api("GET", "/unread-counts")
        assert status == 200, body
        return body

    before = await counts()
    _, me = await gw.api("GET", "/users/me")
    other_id, _ = await gw.user("other@example.com", inbox_ids=[1])
    _, team = await gw.api("POST", "/teams", json_body={"name": "Billing"})
    support = await gw.loopback()
    ids = [(await support.customer_writes(f"+1555610{i:04d}", "hello")).conversation_id for i in range(5)]
    mine, team_only, others, resolved, read = ids
    for cid, patch in [
        (mine, {"assignee_id": me["id"]}),
        (team_only, {"team_id": team["id"]}),
        (others, {"assignee_id": other_id, "team_id": team["id"]}),
        (resolved, {"status": "resolved"}),
    ]:
        status, body = await gw.api("PATCH", f"/conversations/{cid}", json_body=patch)
        assert status == 200, body
    status, _ = await gw.api("POST", f"/conversations/{read}/read")
    assert status == 200

    after = await counts()
    assert after["all"] - before["all"] == 3  # not the resolved one, not the one read
    assert after["mine"] - before["mine"] == 1
    assert after["unassigned"] - before["unassigned"] == 1
    expected_teams = dict(before["teams"])
    for cid in (mine, team_only, others):  # new conversations take their inbox's team, if it has one
        _, item = await gw.api("GET", f"/conversations/{cid}")
        if item["team_id"] is not None:
            expected_teams[str(item["team_id"])] = expected_teams.get(str(item["team_id"]), 0) + 1
    assert expected_teams[str(team["id"])] == 2
    assert after["teams"] == expected_teams
    assert after["inboxes"]["1"] - before["inboxes"].get("1", 0) == 3
