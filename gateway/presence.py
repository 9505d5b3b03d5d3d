"""An agent's availability (online / away / offline): the one place it changes.

Everyone sees it live (``user.presence`` on the stream; chat widgets show it as presence), and an
agent coming online may take conversations waiting in the assignment queue.
"""

from __future__ import annotations

from gateway.container import Container
from inbox import tables as t
from inbox.events import record_event
from inbox.views import UserView, dump


async def set_availability(c: Container, user_id: int, availability: str) -> UserView:
    async with c.db.write() as session:
        user = await session.get(t.User, user_id)
        assert user is not None
        changed = user.availability != availability
        user.availability = availability
        view = UserView.of(user)
        if changed:
            await record_event(
                session,
                "user.presence",
                account_id=user.account_id,
                now=c.clock(),
                payload={"user": dump(view)},
            )
        account_id = user.account_id
    if availability == "online":
        await c.assigner.request_drain(account_id)  # the waiting queue may move now
    return view
