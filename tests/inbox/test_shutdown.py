"""Background workers stop when the gateway stops, whatever they were doing at that moment.

A quota test once hung in ``gw.close()``: ``MailQueue.stop()`` cancelled the sender and waited for it,
but on Python 3.11 ``asyncio.wait_for`` returns normally when the cancel arrives just after what it
waits for completed, so the cancel was lost and the sender slept on (a commit's poke right before the
stop, or an SMTP reply arriving with the cancel inside aiosmtplib's own ``wait_for``). Job handlers
can lose a cancel the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from inbox.events import record_event
from inbox.jobs import InProcessJobs
from inbox.mail import MailQueue, queue_mail


async def _stops(worker: MailQueue | InProcessJobs) -> bool:
    """Whether ``stop()`` returns; a hung stop is cancelled so the next test starts clean."""
    stopper = asyncio.create_task(worker.stop())
    done, _ = await asyncio.wait({stopper}, timeout=5)
    if not done:
        stopper.cancel()  # cancels the sender it awaits too: this second cancel is not lost
        await asyncio.wait({stopper})
    return bool(done)


async def _commit_an_alert(gateway, n: int) -> None:
    """What the quota does when a tier fires: a mail row and an event in one transaction."""
    now = gateway.clock()
    async with gateway.container.db.write() as session:
        queue_mail(session, account_id=1, to=["billing@example.com"], subject=f"alert {n}", body="", now=now)
        await record_event(session, "quota.updated", account_id=1, now=now, payload={"n": n})


async def test_stop_right_after_a_commit_that_queued_mail_returns(gateway):
    mail = gateway.container.mail  # no relay configured: the mail waits in the outbox
    for steps in range(6):  # the poke and the stop land a few loop iterations apart, every spacing
        assert await _stops(mail)
        await mail.start()
        for _ in range(10):  # scheduling steps, not a wait: let the sender park on its wake-up event
            await asyncio.sleep(0)
        await _commit_an_alert(gateway, steps)  # pokes the sender after the commit
        for _ in range(steps):
            await asyncio.sleep(0)
        assert await _stops(mail), f"stop() hung with the poke {steps} loop steps before it"


class _SlowRelay:
    """A mailer waiting on the relay's reply as aiosmtplib does (``asyncio.wait_for`` on a future)."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent: list[str] = []

    async def send(self, to: Sequence[str], subject: str, text: str) -> None:
        self.sending.set()
        await asyncio.wait_for(self.reply, 30)
        self.sent.append(subject)


async def test_stop_while_the_relay_replies_returns_and_sends_nothing_twice(gateway):
    mail = gateway.container.mail
    assert await _stops(mail)
    relay = _SlowRelay()
    mail.mailer = relay
    await mail.start()
    await _commit_an_alert(gateway, 1)
    async with asyncio.timeout(10):
        await relay.sending.wait()
    relay.reply.set_result(None)  # the reply and the cancel arrive together: wait_for keeps the reply
    assert await _stops(mail), "stop() hung after the mailer lost its cancel"
    assert len(relay.sent) <= 1
    assert await mail.deliver_due() == 0  # sent (3.11 kept the reply) or still leased: not sent again


async def test_jobs_stop_while_a_handler_gets_its_reply_returns(gateway):
    jobs = gateway.container.jobs
    assert isinstance(jobs, InProcessJobs)
    reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    running = asyncio.Event()

    async def send_and_wait(_: int) -> None:  # a channel send awaiting its provider's answer
        running.set()
        await asyncio.wait_for(reply, 30)

    jobs.register("test.send", send_and_wait)
    await jobs.enqueue("test.send", 1)
    async with asyncio.timeout(10):
        await running.wait()
    reply.set_result(None)  # the answer and the cancel arrive together
    assert await _stops(jobs), "stop() hung after a job handler lost its cancel"
