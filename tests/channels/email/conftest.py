"""Email test helpers: mail builders, smtplib in a thread, a real dovecot IMAP server."""

from __future__ import annotations

import asyncio
import os
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import IO

import pytest

from tests.services import free_port, missing

SUPPORT = "support@demo.switchboard.test"


def mail(
    subject: str,
    body: str,
    *,
    sender: str = "Ann Example <ann@example.org>",
    to: str = SUPPORT,
    msgid: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    html: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: Sequence[tuple[bytes, str, str]] = (),
) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = msgid or f"<{time.time_ns()}@example.org>"
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references
    for k, v in (headers or {}).items():
        m[k] = v
    m.set_content(body)
    if html is not None:
        m.add_alternative(html, subtype="html")
    for data, ctype, name in attachments:
        main, sub = ctype.split("/")
        m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return m.as_bytes(policy=policy.SMTP)  # CRLF line ends, as on the wire


async def smtp_send(port: int, raw: bytes, sender: str, rcpts: Sequence[str]) -> dict:
    """Send with the stdlib client in a thread (smtplib on the loop thread would deadlock)."""

    def blocking() -> dict:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            return client.sendmail(sender, list(rcpts), raw)

    return await asyncio.to_thread(blocking)


def parsed(envelope) -> EmailMessage:
    return message_from_bytes(envelope.content.replace(b"\r\n", b"\n"), policy=policy.default)


# -- dovecot (shared/reference/test-services.md §3) -------------------------------------------------


def _copy(source: IO[bytes], path: Path) -> None:
    with path.open("ab") as sink:
        for line in source:
            sink.write(line)
            sink.flush()


class Dovecot:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.host, self.user, self.password = "127.0.0.1", "test@example.org", "secret"
        self.maildir = root / "Maildir"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start dovecot and return once its master logged "starting up" (its listeners are bound)."""
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.root / "dovecot.conf")], stderr=subprocess.PIPE
        )
        assert self.proc.stderr is not None
        seen: list[bytes] = []
        for line in self.proc.stderr:  # the config logs to stderr
            seen.append(line)
            if b"starting up" in line:
                break
        else:
            raise RuntimeError(f"dovecot did not start: {b''.join(seen).decode(errors='replace')}")
        # Keep draining the log into a file, or a full pipe would stall dovecot.
        log = self.root / "dovecot.log"
        threading.Thread(target=_copy, args=(self.proc.stderr, log), daemon=True).start()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def deliver(self, raw: bytes) -> None:
        """Drop a message into the maildir as a local delivery agent would (tmp/ then rename)."""
        name = f"{time.time_ns()}.{os.getpid()}.test"
        (self.maildir / "tmp" / name).write_bytes(raw)
        shutil.chown(self.maildir / "tmp" / name, "dovecot", "dovecot")  # before dovecot can see it
        os.rename(self.maildir / "tmp" / name, self.maildir / "new" / name)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if shutil.which("dovecot") is None:
        missing("dovecot (Debian package dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="imap-"))
    root.chmod(0o755)  # mail processes run as uid "dovecot"
    for sub in ("new", "cur", "tmp"):
        (root / "Maildir" / sub).mkdir(parents=True)
    subprocess.run(["chown", "-R", "dovecot:dovecot", str(root / "Maildir")], check=True)
    (root / "passwd").write_text("test@example.org:{PLAIN}secret\n")
    server = Dovecot(root, free_port())
    conf = (Path(__file__).parent / "dovecot.conf.in").read_text()
    (root / "dovecot.conf").write_text(conf.replace("@D@", str(root)).replace("@PORT@", str(server.port)))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def dsn(original_id: str, status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 User unknown") -> bytes:
    """An RFC 3464 bounce, shaped like Postfix's, for a message we sent."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {SUPPORT}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{time.time_ns()}@mx.example.org>\r\n"
        "MIME-Version: 1.0\r\nAuto-Submitted: auto-replied\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n\r\n'
        "--BB\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n"
        "--BB\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; ann@example.org\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n\r\n"
        "--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {SUPPORT}\r\nTo: ann@example.org\r\nMessage-ID: {original_id}\r\nSubject: Re: Order\r\n\r\n"
        "--BB--\r\n"
    ).encode()
