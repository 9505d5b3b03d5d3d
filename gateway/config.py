"""Configuration from ``SWITCHBOARD_*`` environment variables (and CLI flags, which override them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    data_dir: Path = Path("var")
    database_url: str | None = None  # unset: SQLite under data_dir
    redis_url: str | None = None  # unset: embedded jobs and events
    smtp_url: str | None = None  # outbound relay for system mail, e.g. smtp://127.0.0.1:1025
    mail_domain: str = "switchboard.localhost"  # Message-IDs, inbox-<id>@ fallback addresses, SMTP banner
    smtp_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)  # inbound mail size limit (552 above)
    smtp_tls_cert: Path | None = None  # with smtp_tls_key: offer STARTTLS on inbound SMTP
    smtp_tls_key: Path | None = None
    smtp_require_tls: bool = False  # refuse mail before STARTTLS (530)
    smtp_auth_user: str | None = None  # set both: inbound SMTP requires AUTH (535 on a wrong password)
    smtp_auth_password: str | None = Field(default=None, repr=False)
    public_url: str | None = None  # links in emails and webhook URLs; default http://host:port
    simulator: bool = False  # mount the WhatsApp simulator at /simulator/
    job_concurrency: int = Field(default=16, ge=1, le=1024)
    reopen_days: float = Field(default=7.0, ge=0)
    notification_mail_minutes: float = Field(default=10.0, ge=0)  # one notification mail per conversation
    log_level: str = "INFO"
    # The event loop of ``switchboard serve``: "uvloop" needs the ``uvloop`` extra. The standard loop stays
    # the default: in bench/HISTORY.md uvloop did not make the gateway reliably faster (its cost is in
    # the ORM and SQLite round trips, not the loop) and held more memory per idle socket.
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Scale-out (used when redis_url is set; see docs/deploy.md).
    dispatch_lease_seconds: float = Field(default=120.0, gt=0)  # a claimed send is retried after this
    sweep_interval_seconds: float = Field(default=15.0, gt=0)  # how often lost sends are looked for
    sweep_grace_seconds: float = Field(default=60.0, ge=0)  # a queued send this overdue counts as lost
    job_retry_intervals: list[float] = Field(default_factory=lambda: [10.0, 60.0, 300.0])
    job_timeout_seconds: int = Field(default=300, ge=1)
    poller_lease_seconds: float = Field(default=15.0, gt=0)  # a dead poller's channel moves after this
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)  # Prometheus for a worker
    metrics_token: str | None = None  # set: GET /metrics needs "Authorization: Bearer <token>"
    # Outgoing webhooks (inbox/webhooks.py): private, loopback and link-local targets are refused unless
    # this is set (request forgery); a delivery is retried this long before its subscription is disabled.
    webhooks_allow_private: bool = False
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_retry_hours: float = Field(default=24.0, gt=0)

    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")
