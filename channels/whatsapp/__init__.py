"""WhatsApp Business Cloud API: the adapter (a real Graph API client and webhook receiver) and, in
``simulator/``, a stand-in for Meta's platform that speaks the same API (shared/reference/protocols.md §1)."""

from channels.whatsapp.adapter import WhatsAppAdapter, create_adapter

__all__ = ["WhatsAppAdapter", "create_adapter"]
