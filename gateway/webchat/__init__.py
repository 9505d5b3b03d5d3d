"""The visitor-facing side of the website chat: the widget, its socket, uploads, history and presence.

The channel logic lives in ``channels/webchat``; this package is the part that needs the database
(history on reload, resume after a drop, presence of the inbox's agents, read markers).
"""
