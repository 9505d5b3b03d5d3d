"""Configuration from ``SWITCHBOARD_*`` environment variables (and CLI flags, which override them)."""

from __future__ import annotations

from pathlib import Path

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
    log_level: str = "INFO"

    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")
