"""The email channel: MIME parsing, safe HTML, threading, outbound SMTP and an IMAP poller.

The inbound SMTP server lives in ``gateway/smtp.py`` (it needs the channel table to resolve
recipients); it hands each message to ``EmailChannel.ingest``, as the IMAP poller does.
"""
