"""The MIME parser, quote trimming and HTML sanitizing, with recorded-style samples and fuzzing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.adapter import EmailChannel
from channels.email.parse import parse_mail
from channels.email.quoting import trim_reply
from channels.email.sanitize import html_to_text, sanitize_html
from inbox.model import ChannelInfo, ChannelKind, InboundMessage, ReceiveResult

OUTLOOK = (
    b"From: =?iso-8859-1?Q?J=FCrgen_M=FCller?= <jm@firma.example.de>\r\n"
    b"To: support@demo.switchboard.test\r\n"
    b"Subject: =?iso-8859-1?Q?AW:_Rechnung_f=FCr_M=E4rz?=\r\n"
    b"Message-ID: <AM0PR01MB5555@AM0PR01MB.eurprd01.prod.outlook.com>\r\n"
    b"In-Reply-To: <x@mail.test>\r\n"
    b"Date: Tue, 10 Mar 2026 09:15:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Danke, passt so.\r\n\r\nMit freundlichen Gr=FC=DFen\r\n\r\n"
    b"From: Support <support@demo.switchboard.test>\r\nSent: Monday, March 9, 2026 5:00 PM\r\n"
    b"To: J=FCrgen\r\nSubject: Rechnung\r\n\r\nHier ist die Rechnung.\r\n"
    b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Danke, passt so.</p>\r\n--b1--\r\n"
)


def test_outlook_mail_decodes_headers_and_trims_the_quoted_original():
    mail = parse_mail(OUTLOOK)
    assert mail.sender == "jm@firma.example.de" and mail.sender_name == "Jürgen Müller"
    assert mail.subject == "AW: Rechnung für März"
    assert mail.in_reply_to == ["<x@mail.test>"]
    assert mail.date == datetime(2026, 3, 10, 8, 15, tzinfo=UTC)
    assert mail.text is not None and mail.html is not None
    assert "Hier ist die Rechnung." in mail.text
    assert trim_reply(mail.text) == "Danke, passt so.\n\nMit freundlichen Grüßen"
    assert mail.html.strip() == "<p>Danke, passt so.</p>"
    assert mail.notes == []


def test_quote_styles_are_trimmed():
    gmail = "Yes please.\n\nOn Tue, Mar 10, 2026 at 9:00 AM Support <s@x.test>\nwrote:\n> Shall we?\n"
    assert trim_reply(gmail) == "Yes please."
    assert trim_reply("Fine.\n\n-----Original Message-----\nFrom: a\nold") == "Fine."
    assert trim_reply("Ok\n> quoted\n> more\n") == "Ok"
    assert trim_reply("Ok\n\nSent from my iPhone") == "Ok"
    assert trim_reply("> only a quote") == "> only a quote"  # never trimmed to nothing
    inline = "> question 1\nanswer 1\n> question 2\nanswer 2"
    assert trim_reply(inline) == inline  # interleaved answers are the message


XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<iframe src="https://evil.example"></iframe>',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<form action="https://evil.example"><input name=p></form>',
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<meta http-equiv="refresh" content="0;url=https://evil.example">',
    '<base href="https://evil.example/">',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '"><img src=x onerror=alert(1)>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]


def test_known_xss_payloads_are_neutralized():
    for payload in XSS:
        clean = sanitize_html(f"<p>hi</p>{payload}").lower()
        for bad in (
            "<script",
            "onerror",
            "onload",
            "javascript:",
            "<iframe",
            "<svg",
            "<form",
            "<object",
            "<meta",
            "<base",
            "style=",
            "data:text",
        ):
            assert bad not in clean, (payload, clean)


def test_remote_images_are_blocked_unless_allowed_and_links_are_safe():
    html = '<img src="https://track.example/p.gif"><img src="cid:logo@x"><a href="https://ok.example">ok</a>'
    blocked = sanitize_html(html)
    assert "track.example" not in blocked and 'src="cid:logo@x"' in blocked
    assert 'rel="noopener noreferrer nofollow"' in blocked
    assert "track.example" in sanitize_html(html, allow_remote_images=True)


def test_html_only_mail_gets_readable_text():
    assert html_to_text("<p>Hi&nbsp;there</p><p>Line<br>two</p><style>p{}</style>") == "Hi there\nLine\ntwo"


def test_malformed_mime_is_kept_with_a_parse_note():
    broken = (
        b'From: ann@example.org\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary="zzz"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n--zzz\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n"
    )
    mail = parse_mail(broken)
    assert mail.notes  # says what went wrong
    assert mail.message_id.startswith("<sha256-")  # no Message-ID: synthesized, stable for dedupe
    assert parse_mail(broken).message_id == mail.message_id


class _Memory:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.state: dict[str, dict] = {}

    async def put(self, data: bytes) -> str:
        import hashlib

        key = hashlib.sha256(data).hexdigest()
        self.files[key] = data
        return key

    async def get(self, key: str) -> bytes:
        return self.files[key]


class _State:
    def __init__(self) -> None:
        self.values: dict[str, dict] = {}

    async def get(self, key):
        return self.values.get(key)

    async def set(self, key, value):
        self.values[key] = value


def _channel() -> EmailChannel:
    info = ChannelInfo(
        id=7,
        account_id=1,
        inbox_id=1,
        kind=ChannelKind.EMAIL,
        name="mail",
        config={"address": "support@demo.switchboard.test", "webhook_secret": "s3cret"},
    )
    return EmailChannel(
        info,
        state=_State(),
        media=_Memory(),
        mail_domain="mail.test",
        default_relay=None,
        clock=lambda: datetime.now(UTC),
    )


_header_names = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Date",
        "Auto-Submitted",
        "Content-Disposition",
        "MIME-Version",
    ]
)
_header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            'multipart/mixed; boundary="b"',
            "=?utf-8?b?!!?=",
            "=?x-unknown?q?a?=",
            "<a@b>",
            "text/plain; charset=utf-7",
            "base64",
            "quoted-printable",
            'attachment; filename="a\x00b"',
            "message/rfc822",
            "multipart/report; report-type=delivery-status",
            "<<<>>>",
            "@@@",
        ]
    ),
)
_bodies = st.one_of(
    st.binary(max_size=400),
    st.sampled_from(
        [
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>x\r\n--b--",
            b"--b\r\n\r\n",
            b"=\xff=",
            b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\n\r\n--b--",
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=st.lists(st.tuples(_header_names, _header_values), max_size=10), body=_bodies)
def test_fuzzed_mime_never_crashes_the_parser_or_the_adapter(headers, body):
    raw = (
        b"".join(
            f"{n}: {v}".encode("utf-8", errors="surrogateescape").replace(b"\r", b"").replace(b"\n", b"")
            + b"\r\n"
            for n, v in headers
        )
        + b"\r\n"
        + body
    )
    mail = parse_mail(raw)
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    channel = _channel()
    captured: list[InboundMessage] = []

    async def sink(message: InboundMessage) -> ReceiveResult:
        captured.append(message)
        return ReceiveResult(message_id=1, conversation_id=1, duplicate=False)

    async def run() -> None:
        await channel.start(sink, None)  # type: ignore[arg-type]
        await channel.ingest(raw, mail_from="x@example.org", recipients=["support@demo.switchboard.test"])

    asyncio.run(run())
    [message] = captured
    assert message.provider_message_id and "@" in message.sender
    assert message.raw["email"]["original_media_key"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse(raw):
    parse_mail(raw)


# -- recorded MIME shapes (tests/fixtures/email) ------------------------------------------------------

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[2] / "fixtures" / "email"


def test_attachments_are_the_mime_leaves_that_are_not_the_body():
    mail = parse_mail((FIXTURES / "nested_no_disposition.eml").read_bytes())
    assert mail.text == "See the photo below."
    assert "cid:img1" in (mail.html or "")
    # The inline image and the disposition-less binary deep in the tree; no multipart container.
    assert [(a.content_type, a.filename, len(a.data)) for a in mail.attachments] == [
        ("image/png", None, 70),
        ("application/octet-stream", "log.bin", 6),
    ]


def test_an_attachment_only_mail_keeps_its_file():
    mail = parse_mail((FIXTURES / "attachment_only.eml").read_bytes())
    assert mail.text is None
    [pdf] = mail.attachments
    assert (pdf.content_type, pdf.filename, pdf.data) == ("application/pdf", "scan.pdf", b"%PDF-1.4 scan")


def test_text_is_decoded_with_its_charset_or_a_fallback_never_replacement_characters():
    def text(name: str) -> str:
        return parse_mail((FIXTURES / name).read_bytes()).text or ""

    assert text("eightbit_no_charset.eml") == "Olá, não recebi o pedido.\n"  # 8-bit, no charset: cp1252
    assert text("declared_charset_wrong.eml") == "Café com açúcar\n"  # says ascii, is UTF-8
    assert text("declared_koi8r.eml") == "Привет\n"  # the declared charset when it fits
