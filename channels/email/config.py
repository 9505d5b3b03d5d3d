"""An email channel's settings (the channel row's ``config``), validated at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ImapConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    host: str
    port: int = Field(default=993, ge=1, le=65535)
    tls: bool = True
    user: str
    password: str = Field(default="", repr=False)  # prefer the channel's top-level imap_password
    folder: str = "INBOX"
    use_idle: bool = True  # False: poll even when the server offers IDLE (for servers whose IDLE is broken)
    poll_seconds: float = Field(default=60, gt=0)  # when the server has no IDLE
    # Re-issue IDLE (with a NOOP and UID SEARCH in between) this often: well inside RFC 2177's 29
    # minutes, and a bound on how late a push the server sent mid-handshake can be noticed.
    idle_seconds: float = Field(default=5 * 60, gt=0)
    command_timeout: float = Field(default=30, gt=0)
    reconnect_min: float = Field(default=1, gt=0)
    reconnect_max: float = Field(default=300, gt=0)


class SpamHeaderRule(BaseModel):
    """Mail whose header ``name`` contains ``contains`` (case-insensitive) is filtered as spam."""

    name: str = "X-Spam-Flag"
    contains: str = "YES"


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    address: str  # the channel's own address; mail to it (and to address+token) is ours
    from_name: str | None = None
    relay_url: str | None = Field(default=None, repr=False)  # outbound; default: the gateway's smtp_url
    # Secrets at the top level: keys ending in "password" are withheld from non-admins (inbox.views).
    relay_password: str | None = Field(default=None, repr=False)
    imap: ImapConfig | None = None
    imap_password: str | None = Field(default=None, repr=False)
    blocked_senders: list[str] = Field(default_factory=list)
    blocked_domains: list[str] = Field(default_factory=list)
    spam_header: SpamHeaderRule | None = None
    allow_remote_images: bool = False
    max_attachment_bytes: int = Field(default=20 * 1024 * 1024, ge=0)
    reply_token_secret: str | None = Field(default=None, repr=False)
    webhook_secret: str | None = Field(default=None, repr=False)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().lower()
        if "@" not in value or any(c in value for c in "\r\n "):
            raise ValueError("address must be an email address")
        return value

    @field_validator("blocked_senders", "blocked_domains")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in values if v.strip()]
