"""A WhatsApp channel's configuration (the channel row's ``config``), validated at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

GRAPH_URL = "https://graph.facebook.com"
API_VERSION = "v21.0"


class WhatsAppConfig(BaseModel):
    """Points at Meta's Graph API, or at the simulator (``{public}/simulator/graph``) in the demo."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    base_url: str = GRAPH_URL
    api_version: str = Field(default=API_VERSION, pattern=r"^v\d+\.\d+$")
    phone_number_id: str = Field(min_length=1, max_length=64)
    display_phone_number: str | None = None
    waba_id: str | None = None  # the WhatsApp Business Account: needed only to list templates
    access_token: str = Field(min_length=1, repr=False)
    app_secret: str = Field(min_length=1, repr=False)
    verify_token: str = Field(min_length=1, repr=False)
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)

    @property
    def graph(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.api_version}"
