"""Optional STARTTLS and AUTH on the inbound SMTP server, by configuration."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.channels.email.conftest import SUPPORT, mail
from tests.harness import start_gateway
from tests.services import missing


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        missing("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_starttls_and_auth_are_enforced_when_configured(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    gw = await start_gateway(
        tmp_path / "gw",
        settings={
            "smtp_tls_cert": cert,
            "smtp_tls_key": key,
            "smtp_require_tls": True,
            "smtp_auth_user": "relay",
            "smtp_auth_password": "s3cret-pass",
        },
    )
    port = gw.container.smtp.port
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # the test's self-signed certificate

    def attempt(tls: bool, password: str | None) -> dict:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            if tls:
                client.starttls(context=insecure)
                client.ehlo()
            if password is not None:
                client.login("relay", password)
            return client.sendmail("ann@example.org", [SUPPORT], mail("secure", "over TLS"))

    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as plain:
            await asyncio.to_thread(attempt, False, None)
        assert plain.value.smtp_code == 530  # STARTTLS first
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            await asyncio.to_thread(attempt, True, "guess")
        assert wrong.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPSenderRefused) as anonymous:
            await asyncio.to_thread(attempt, True, None)
        assert anonymous.value.smtp_code == 530  # authentication required

        assert await asyncio.to_thread(attempt, True, "s3cret-pass") == {}
        status, page = await gw.api("GET", "/conversations?status=open")
        texts = []
        for conv in page["items"]:
            _, messages = await gw.api("GET", f"/conversations/{conv['id']}/messages")
            texts += [m["text"] for m in messages["items"]]
        assert texts.count("over TLS") == 1
    finally:
        await gw.close()
