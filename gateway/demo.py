"""``switchboard serve --demo``: one account, an admin and an agent, one inbox with a channel of each kind."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from channels.whatsapp.simulator.model import DEFAULT_TEMPLATES
from gateway.api.admin import create_user_in, issue_token
from gateway.container import Container
from inbox import tables as t
from inbox.model import ChannelKind, InboundMessage, Role

ADMIN_EMAIL = "admin@demo.switchboard.test"
AGENT_EMAIL = "agent@demo.switchboard.test"
DEMO_PASSWORD = "switchboard-demo"


async def seed_demo(c: Container) -> str:
    """Seed once (idempotent); return a fresh API token for the demo admin."""
    now = c.clock()
    async with c.db.write() as session:
        admin = await session.scalar(select(t.User).where(t.User.email == ADMIN_EMAIL))
        if admin is not None:
            return await issue_token(session, admin.id, now)
        account = t.Account(
            name="Demo Company", timezone="UTC", included_conversations=1000, settings={}, created_at=now
        )
        session.add(account)
        await session.flush()
        admin, token = await create_user_in(
            session,
            account_id=account.id,
            email=ADMIN_EMAIL,
            name="Ada Admin",
            role=Role.SUPER_ADMIN,
            password=DEMO_PASSWORD,
            now=now,
        )
        agent, _ = await create_user_in(
            session,
            account_id=account.id,
            email=AGENT_EMAIL,
            name="Alex Agent",
            role=Role.AGENT,
            password=DEMO_PASSWORD,
            now=now,
        )
        team = t.Team(account_id=account.id, name="Support", created_at=now)
        session.add(team)
        await session.flush()
        session.add_all([t.TeamMember(team_id=team.id, user_id=u.id) for u in (admin, agent)])
        inbox = t.InboxRow(
            account_id=account.id, name="Support", team_id=team.id, settings={}, created_at=now
        )
        session.add(inbox)
        await session.flush()
        session.add_all([t.InboxMember(inbox_id=inbox.id, user_id=u.id) for u in (admin, agent)])
        public = c.settings.effective_public_url()
        configs: dict[ChannelKind, dict[str, object]] = {
            ChannelKind.LOOPBACK: {},
            ChannelKind.EMAIL: {"address": "support@demo.switchboard.test"},
            ChannelKind.WEBCHAT: {"allowed_origins": [public], "token": secrets.token_urlsafe(16)},
            ChannelKind.WHATSAPP: {
                "base_url": f"{public}/simulator/graph",
                "phone_number_id": "100000000000001",
                "waba_id": "100000000000000",
                "display_phone_number": "+15550100001",
                "access_token": secrets.token_urlsafe(24),
                "app_secret": secrets.token_urlsafe(24),
                "verify_token": secrets.token_urlsafe(16),
            },
            ChannelKind.TELEGRAM: {"mode": "polling"},
        }
        channels = []
        for kind, config in configs.items():
            channel = t.Channel(
                account_id=account.id,
                inbox_id=inbox.id,
                kind=kind,
                name=f"Demo {kind.value}",
                config={**config, "webhook_secret": secrets.token_urlsafe(32)},
                created_at=now,
            )
            session.add(channel)
            channels.append(channel)
        await session.flush()
        loopback_id = channels[0].id
        # The simulator's approved templates, registered with the gateway as an admin would after
        # approving them at Meta, so the demo can send outside the service window.
        whatsapp = next(ch for ch in channels if ch.kind == ChannelKind.WHATSAPP)
        session.add_all(
            t.MessageTemplate(
                account_id=account.id,
                channel_id=whatsapp.id,
                name=template.name,
                language=template.language,
                category=template.category.lower(),
                body=template.body,
                status=template.status.lower(),
                created_at=now,
                updated_at=now,
            )
            for template in DEFAULT_TEMPLATES
        )
    # A first conversation, through the real inbound pipeline.
    await c.adapters.get(loopback_id)
    await c.pipeline.receive(
        InboundMessage(
            channel_id=loopback_id,
            provider_message_id="demo-1",
            sender="+15550123456",
            sender_name="Maria Demo",
            text="Hi! My order #1234 has not arrived yet. Can you help?",
        )
    )
    return token
