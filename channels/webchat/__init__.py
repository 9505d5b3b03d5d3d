"""The website chat channel: an embeddable widget talking to the gateway over a websocket.

The adapter (``adapter.py``) owns the visitors' live sockets, their identity, the targeting rules and
the rate limits; the gateway (``gateway/webchat``) serves the widget, the socket endpoint and the
database reads (history, resume), and hands visitor messages to the adapter, which feeds the inbound
pipeline. Agent replies reach ``WebchatAdapter.send`` through the outbox like every other channel.
"""
