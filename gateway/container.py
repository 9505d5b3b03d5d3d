"""The composition root: builds every part from the settings and wires them together.

Building does no I/O; ``start`` opens the database, migrates, starts the bus, the job workers and the
channel adapters, and re-dispatches what a crash left queued. ``stop`` undoes it in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from bots.runner import STEP_JOB, BotRunner
from gateway.adapters import AdapterFactory, AdapterRegistry, default_factories
from gateway.config import Settings
from gateway.leases import Exclusive, Leases, LocalLeases, RedisLeases
from gateway.mailer import SmtpMailer
from gateway.metrics import Metrics
from gateway.outgoing_webhooks import HttpPoster
from gateway.redis_bus import RedisCacheDrops, RedisPokes
from gateway.rq_jobs import RqJobs
from gateway.sign_in_limits import SignInLimiter, sign_in_limiter
from gateway.smtp import SmtpSecurity, SmtpServer
from gateway.sweeper import sweep_forever
from gateway.webchat.fallback import EmailFallback
from gateway.webchat.hook import record_visitor_context
from gateway.whatsapp_number import follow_number_change
from inbox.automation_runs import AutomationRunner
from inbox.blocking import MarkBlocked, clear_blocked
from inbox.broadcasts import (
    BroadcastRunner,
    BusinessOpensFirstHook,
    OpensHeldConversations,
    RepliesDisabledHook,
)
from inbox.caches import Caches
from inbox.consent import ConsentPolicy, KeywordHook, consent_of
from inbox.contact_limit import ContactLimitPolicy
from inbox.csat import CsatSender, RatingHook, SurveyHook, not_sent_on_failure
from inbox.db import Clock, Database, sqlite_url, utcnow
from inbox.events import EventBus
from inbox.inbound import InboundPipeline
from inbox.jobs import InProcessJobs
from inbox.mail import MailQueue
from inbox.mail_tickets import TicketsFromMail
from inbox.media import MediaStore
from inbox.model import ChannelKind
from inbox.notifications import Notifier
from inbox.outbox import Outbox
from inbox.quota import Quota
from inbox.schema import migrate
from inbox.tables import Event
from inbox.webhook_sender import WEBHOOK_JOB, WebhookSender
from inbox.webhooks import DeliveryHook
from inbox.windows import WindowPolicy
from reports.facts import record_facts
from routing.assignment import Assigner, QueueWatcher
from routing.engine import RoutingHook

_LOGGER = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    media: MediaStore
    bus: EventBus
    jobs: InProcessJobs | RqJobs
    adapters: AdapterRegistry
    pipeline: InboundPipeline
    outbox: Outbox
    assigner: Assigner
    routing: RoutingHook
    bots: BotRunner
    broadcasts: BroadcastRunner
    queue_watcher: QueueWatcher
    mail: MailQueue
    smtp: SmtpServer
    leases: Leases
    metrics: Metrics
    notifier: Notifier
    webhooks: WebhookSender
    sign_ins: SignInLimiter  # failed sign-ins, shared by the gateways when scaled out
    csat: CsatSender
    caches: Caches
    automations: AutomationRunner
    # "gateway" serves HTTP, runs channels and the live bus; "worker" runs RQ jobs (gateway/worker.py).
    role: Literal["gateway", "worker"] = "gateway"
    pokes: RedisPokes | None = None
    cache_drops: RedisCacheDrops | None = None
    started: bool = field(default=False)
    _exclusives: list[Exclusive] = field(default_factory=list)

    @property
    def rq(self) -> RqJobs | None:
        """The RQ queue when scaled out, else None."""
        return self.jobs if isinstance(self.jobs, RqJobs) else None

    def _committed(self, events: Sequence[Event]) -> None:
        """After a commit that wrote events: fan them out; mail may have been queued with them."""
        self.bus.committed_here(events)
        self.mail.poke()

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db.connect()
        self.caches.attach(self.db)
        await migrate(self.db)
        if self.role == "gateway":
            await self.bus.start()
        if self._committed not in self.db.after_commit:  # a container may be started again
            self.db.after_commit.append(self._committed)
        if self.pokes is not None:
            await self.pokes.start()
        if self.cache_drops is not None:
            await self.cache_drops.start()
        await self.jobs.start()
        await self.mail.start()
        if self.role == "gateway":
            await self.webhooks.start()
            await self.csat.start()
        if self.role == "gateway":
            self.adapters.leases = self.leases  # pollers run once across the cluster
            await self.adapters.start_all()
            await self.smtp.start()
            await self.queue_watcher.start()
        if self.rq is None:
            pending = await self.outbox.redispatch_pending()
            if pending:
                _LOGGER.info("re-dispatching %d queued messages left from before", pending)
        elif self.role == "worker":
            # Scaled out, no single process owns "start-up": one worker sweeps for lost sends instead.
            grace = timedelta(seconds=self.settings.sweep_grace_seconds)
            self._exclusives.append(
                self.leases.run_exclusive(
                    "sweeper",
                    lambda: sweep_forever(
                        self.db, self.jobs, self.clock, grace, self.settings.sweep_interval_seconds
                    ),
                )
            )
        if self.role == "gateway":
            runs = await self.bots.resume()
            if runs:
                _LOGGER.info("resuming %d bot runs", runs)
            broadcasts = await self.broadcasts.resume()
            if broadcasts:
                _LOGGER.info("resuming %d broadcasts", broadcasts)
            # The automations' timers live in their table: one sweeper across the cluster takes what is due.
            self._exclusives.append(self.leases.run_exclusive("automations", self.automations.serve))
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        for exclusive in self._exclusives:
            await exclusive.stop()
        self._exclusives.clear()
        await self.automations.stop()
        if self.role == "gateway":
            await self.smtp.stop()
            await self.queue_watcher.stop()
        await self.adapters.stop_all()
        await self.webhooks.stop()
        await self.csat.stop()
        await self.mail.stop()
        await self.jobs.stop()
        if isinstance(self.webhooks.poster, HttpPoster):
            await self.webhooks.poster.stop()
        if self.pokes is not None:
            await self.pokes.stop()
        if self.cache_drops is not None:
            await self.cache_drops.stop()
        await self.leases.close()
        await self.sign_ins.close()
        await self.bus.stop()
        self.caches.detach()
        await self.db.close()
        self.started = False


def build(
    settings: Settings,
    *,
    clock: Clock = utcnow,
    factories: dict[ChannelKind, AdapterFactory] | None = None,
    role: Literal["gateway", "worker"] = "gateway",
) -> Container:
    db = Database(settings.database_url or sqlite_url(settings.data_dir.resolve()))
    media = MediaStore(settings.data_dir.resolve() / "media")
    bus = EventBus(db)
    jobs: InProcessJobs | RqJobs
    leases: Leases
    pokes: RedisPokes | None = None
    cache_drops: RedisCacheDrops | None = None
    # Rarely changing rows read once per process; commits that change them drop them (caches.py).
    caches = Caches()
    if settings.redis_url:
        jobs = RqJobs(
            settings.redis_url,
            retry_intervals=settings.job_retry_intervals,
            job_timeout=settings.job_timeout_seconds,
        )
        leases = RedisLeases(settings.redis_url, ttl=settings.poller_lease_seconds)
        pokes = RedisPokes(settings.redis_url, bus, listen=role == "gateway")
        cache_drops = RedisCacheDrops(settings.redis_url, caches)
    else:
        jobs = InProcessJobs(concurrency=settings.job_concurrency)
        leases = LocalLeases()
    adapters = AdapterRegistry(
        db,
        factories if factories is not None else default_factories(),
        media,
        settings.effective_public_url(),
        clock,
        mail_domain=settings.mail_domain,
        smtp_url=settings.smtp_url,
    )
    db.on_events.append(record_facts)  # report facts commit with the events they come from
    pipeline = InboundPipeline(db, clock, media, reopen_within=timedelta(days=settings.reopen_days))
    pipeline.hooks += [record_visitor_context, follow_number_change]
    outbox = Outbox(
        db,
        jobs,
        adapters.get,
        clock,
        lease=timedelta(seconds=settings.dispatch_lease_seconds),
        caches=caches,
    )
    # A held conversation (business opens first) is opened by the business's first message: that policy
    # refuses nothing. DESIGN.md §3: the plan's contact limit, consent, then the service window, then the
    # quota (which counts, so it runs last).
    quota = Quota(settings.effective_public_url())
    outbox.policies.extend(
        [OpensHeldConversations(), ContactLimitPolicy(), ConsentPolicy(), WindowPolicy(caches), quota]
    )
    outbox.failure_hooks.append(quota.release)
    pipeline.hooks.insert(0, KeywordHook(outbox))  # consent keywords before routing and bots
    pipeline.hooks.insert(1, RepliesDisabledHook(outbox))  # a broadcast's "allow replies: no"
    pipeline.hooks.insert(2, BusinessOpensFirstHook(outbox))  # before routing, which skips held ones
    pipeline.hooks.insert(3, RatingHook(outbox))  # a survey's answer, before routing and bots see it
    outbox.failure_hooks.append(not_sent_on_failure)
    mailer = SmtpMailer(settings.smtp_url, mail_domain=settings.mail_domain) if settings.smtp_url else None
    mail = MailQueue(db, mailer, clock)
    adapters.bind(pipeline.receive, outbox.apply_status)
    # A contact who blocked the bot is marked on the failed send and unmarked when they write again.
    outbox.failure_hooks.append(MarkBlocked(clock))
    pipeline.hooks.append(clear_blocked)
    # Routing then bots run inside each inbound transaction; bot steps run as jobs after the commit.
    assigner = Assigner(db, jobs, clock)
    bots = BotRunner(db, jobs, outbox, clock, humans=assigner.assign)
    routing = RoutingHook(outbox, assigner, bots=bots.launch, consent=consent_of)
    pipeline.hooks += [routing, bots.hook, TicketsFromMail(settings.mail_domain)]
    broadcasts = BroadcastRunner(db, jobs, outbox, clock)
    # Automation runs are written with the events that trigger them, and taken right after that commit.
    automations = AutomationRunner(
        db, outbox, clock, start_flow=bots.launch, queue_flow=lambda run_id: jobs.enqueue(STEP_JOB, run_id)
    )
    db.on_events.append(automations.triggers)
    db.after_commit.append(automations.committed)
    queue_watcher = QueueWatcher(bus, assigner)
    # Notices for users are rows written with the events they come from (and their mail with them).
    notifier = Notifier(
        settings.effective_public_url(),
        timedelta(minutes=settings.notification_mail_minutes),
        caches=caches,
    )
    db.on_events.append(notifier)
    webhooks = WebhookSender(
        db,
        jobs,
        HttpPoster(timeout=settings.webhooks_timeout_seconds, allow_private=settings.webhooks_allow_private),
        clock,
        retry_for=timedelta(hours=settings.webhooks_retry_hours),
        mail_queued=mail.poke,
    )
    jobs.register(WEBHOOK_JOB, webhooks.run)
    # Deliveries are written with their events; the sender looks right after such a commit.
    delivery_hook = DeliveryHook(caches)
    db.on_events.append(delivery_hook)
    db.after_commit.append(lambda events: webhooks.poke() if delivery_hook.has_deliveries(events) else None)
    # Surveys are scheduled with the resolution; the sender looks right after such a commit.
    csat = CsatSender(db, outbox, clock)
    survey_hook = SurveyHook()
    db.on_events.append(survey_hook)
    db.after_commit.append(lambda events: csat.poke() if survey_hook.has_surveys(events) else None)
    smtp = SmtpServer(
        db,
        adapters,
        clock,
        host=settings.smtp_host,
        port=settings.smtp_port,
        hostname=settings.mail_domain,
        mail_domain=settings.mail_domain,
        max_bytes=settings.smtp_max_bytes,
        security=SmtpSecurity(
            tls_cert=settings.smtp_tls_cert,
            tls_key=settings.smtp_tls_key,
            require_tls=settings.smtp_require_tls,
            auth_user=settings.smtp_auth_user,
            auth_password=settings.smtp_auth_password,
        ),
    )
    container = Container(
        settings=settings,
        clock=clock,
        db=db,
        media=media,
        bus=bus,
        jobs=jobs,
        adapters=adapters,
        pipeline=pipeline,
        outbox=outbox,
        assigner=assigner,
        routing=routing,
        bots=bots,
        broadcasts=broadcasts,
        queue_watcher=queue_watcher,
        mail=mail,
        smtp=smtp,
        leases=leases,
        metrics=Metrics(),
        notifier=notifier,
        webhooks=webhooks,
        sign_ins=sign_in_limiter(settings.redis_url, clock),
        csat=csat,
        caches=caches,
        automations=automations,
        role=role,
        pokes=pokes,
        cache_drops=cache_drops,
    )
    adapters.undelivered = EmailFallback(container)
    return container
