"""The Telegram adapter's pure parts: text splitting, update parsing (recorded payloads), error mapping,
settings."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from channels.telegram import Mode, TelegramConfig, telegram_channel
from channels.telegram.adapter import callback_data
from channels.telegram.errors import RedactingFilter, Redactor, map_send_error
from channels.telegram.parse import ParsedUpdate, UnreadableUpdate, parse_update
from channels.telegram.split import MAX_TEXT, split_text, utf16_len
from inbox.model import (
    ChannelInfo,
    ChannelKind,
    OutboundMessage,
    PermanentChannelError,
    Reason,
    TransientChannelError,
)
from tests.channels.telegram.fake_bot_api import fixture

TOKEN = "7000001:AAE-fake-token-QkZ9sTt3uVwXyZ_0123456789"

# -- splitting -------------------------------------------------------------------------------------


def test_short_text_is_one_message_and_blank_text_none():
    assert split_text("hello") == ["hello"]
    assert split_text("  hello \n") == ["hello"]
    assert split_text(" \n\t ") == []


def test_long_text_splits_at_the_last_word_boundary_before_4096():
    words = ["word"] * 2000  # 9,999 characters with spaces
    text = " ".join(words)
    chunks = split_text(text)
    assert len(chunks) == 3
    assert all(utf16_len(c) <= MAX_TEXT for c in chunks)
    assert all(set(c.split(" ")) == {"word"} for c in chunks)  # no word was cut
    assert " ".join(chunks) == text


def test_a_word_longer_than_the_limit_is_cut_and_emoji_count_double():
    assert split_text("x" * 10, limit=4) == ["xxxx", "xxxx", "xx"]
    # 😀 is two UTF-16 units, as Telegram counts: three of them do not fit in 5.
    assert split_text("😀😀😀", limit=5) == ["😀😀", "😀"]


@given(
    st.lists(
        st.sampled_from(["a", "b", " ", "\n", "é", "😀", "\t", "xyz", "longword" * 3]), max_size=120
    ).map("".join),
    st.integers(min_value=2, max_value=40),
)
def test_split_properties(text: str, limit: int):
    chunks = split_text(text, limit)
    assert all(chunks), "no empty chunk"
    assert all(utf16_len(c) <= limit for c in chunks)
    assert all(c == c.strip() for c in chunks)
    # Nothing but whitespace at the cuts is lost, and the order is kept.
    assert "".join("".join(chunks).split()) == "".join(text.split())
    # A word that fits is never cut: every chunk boundary falls on whitespace unless the chunk is full.
    rebuilt = text.strip()
    position = 0
    for chunk in chunks[:-1]:
        position = rebuilt.index(chunk, position) + len(chunk)
        if utf16_len(chunk) < limit - 1:
            assert rebuilt[position].isspace()


def test_callback_data_is_cut_to_64_bytes_without_breaking_a_character():
    assert callback_data("Track my order") == "Track my order"
    cut = callback_data("ü" * 40)  # 80 bytes
    assert len(cut.encode()) <= 64 and cut == "ü" * 32


# -- parsing recorded updates ----------------------------------------------------------------------


def parse(name: str):
    raw = fixture(name)
    parsed = parse_update(6, raw)
    return parsed if isinstance(parsed, ParsedUpdate) else None


def test_private_text():
    parsed = parse("private_text.json")
    assert parsed is not None
    m = parsed.message
    assert (m.provider_message_id, m.sender, m.sender_name, m.text) == ("111:42", "111", "Ann Lee", "hello")
    assert m.contact_attributes == {"telegram_username": "ann"}
    assert m.thread_key is None and m.reply_address is None
    assert m.received_at == datetime.fromtimestamp(1717000000, UTC)
    assert m.raw["update_id"] == 900000001


def test_photo_takes_the_largest_size_and_the_caption():
    parsed = parse("photo.json")
    assert parsed is not None
    assert parsed.message.text == "the parcel arrived like this" and parsed.message.content_type == "image"
    [ref] = parsed.files
    assert ref.file_id == "AgACAgIAAxkBAAIBK2Zlarge" and ref.content_type == "image/jpeg"


def test_document_keeps_name_and_type():
    parsed = parse("document.json")
    assert parsed is not None
    [ref] = parsed.files
    assert (ref.filename, ref.content_type, ref.size) == ("invoice-1234.pdf", "application/pdf", 48213)
    assert parsed.message.content_type == "document" and parsed.message.text == "my invoice"


def test_edit_points_at_the_original_and_is_its_own_delivery():
    parsed = parse("edited_message.json")
    assert parsed is not None
    m = parsed.message
    assert m.edit_of == "111:42" and m.provider_message_id == "111:42:edit:900000004"
    assert m.text == "hello, order 1234 is late"
    assert m.received_at == datetime.fromtimestamp(1717000090, UTC)


def test_button_press_references_the_message_with_the_button():
    parsed = parse("callback_query.json")
    assert parsed is not None
    assert parsed.callback_query_id == "4382bfdwdsb323b2d9"
    m = parsed.message
    assert m.text == "Track my order" and m.content_type == "interactive"
    assert m.references == ("111:45",) and m.provider_message_id == "cb:4382bfdwdsb323b2d9"
    assert m.sender == "111"


def test_group_message_has_its_own_thread_and_names_the_sender():
    parsed = parse("group_text.json")
    assert parsed is not None
    m = parsed.message
    assert m.thread_key == "chat:-1001234567890" and m.reply_address == "-1001234567890"
    assert m.sender == "222" and m.text == "Bob (@bobby): does the shop open on Sunday?"


def test_service_messages_are_skipped_and_stickers_show_their_emoji_and_image():
    assert parse("group_join.json") is None
    sticker = parse("sticker.json")
    assert sticker is not None and (sticker.message.content_type, sticker.message.text) == ("sticker", "👍")
    [ref] = sticker.files
    assert ref.content_type == "image/webp"


@pytest.mark.parametrize(
    ("name", "content_type", "text"),
    [
        ("contact.json", "contacts", "Bea Diaz: +5511987654321"),
        ("venue.json", "location", "Blue Café, 12 Rua Augusta (-23.55, -46.63)"),
        ("dice.json", "dice", "🎲 4"),
        ("forwarded.json", "text", "[Forwarded from Carl Mo] order 77 arrived broken"),
        ("voice.json", "voice", None),
        ("poll.json", "poll", "Which day?\nMon / Tue"),
    ],
)
def test_real_message_kinds_land_readable(name: str, content_type: str, text: str | None):
    parsed = parse(name)
    assert parsed is not None
    assert (parsed.message.content_type, parsed.message.text) == (content_type, text)


def test_service_updates_are_ignored_and_broken_ones_refused():
    for name in ("inline_query.json", "my_chat_member.json"):
        assert not isinstance(parse_update(6, fixture(name)), ParsedUpdate)
    with pytest.raises(UnreadableUpdate):
        parse_update(6, fixture("unreadable.json"))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "message",
                        "chat",
                        "id",
                        "from",
                        "message_id",
                        "text",
                        "photo",
                        "caption",
                        "sticker",
                        "venue",
                        "location",
                        "contact",
                        "callback_query",
                        "forward_origin",
                        "file_id",
                        "date",
                        "type",
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=25,
    )
)
def test_any_json_parses_or_is_refused_as_unreadable(value):
    raw = {"update_id": 1, **value} if isinstance(value, dict) else {"update_id": 1, "message": value}
    # Anything else (a TypeError, a KeyError) would fail the test: the parser reads every field leniently.
    with contextlib.suppress(UnreadableUpdate):
        parse_update(6, raw)


# -- errors ----------------------------------------------------------------------------------------


def test_send_errors_map_to_what_the_outbox_understands():
    redact = Redactor(TOKEN)
    retry = map_send_error(RetryAfter(3), 111, redact)
    assert isinstance(retry, TransientChannelError) and retry.retry_after == 3.0
    retry_td = map_send_error(RetryAfter(timedelta(seconds=7)), 111, redact)
    assert isinstance(retry_td, TransientChannelError) and retry_td.retry_after == 7.0

    blocked = map_send_error(Forbidden("Forbidden: bot was blocked by the user"), 111, redact)
    assert isinstance(blocked, PermanentChannelError) and blocked.reason == Reason.BLOCKED_BY_USER
    kicked = map_send_error(Forbidden("Forbidden: bot was kicked from the supergroup chat"), -100123, redact)
    assert isinstance(kicked, PermanentChannelError) and kicked.reason == Reason.CHANNEL_ERROR

    cases = {
        BadRequest("Bad Request: chat not found"): Reason.INVALID_RECIPIENT,
        BadRequest("Bad Request: message is too long"): Reason.MESSAGE_TOO_LONG,
        ChatMigrated(-100999): Reason.INVALID_RECIPIENT,
        InvalidToken("Unauthorized"): Reason.CHANNEL_ERROR,
    }
    for exc, reason in cases.items():
        mapped = map_send_error(exc, 111, redact)
        assert isinstance(mapped, PermanentChannelError) and mapped.reason == reason, exc
    for exc in (NetworkError("Bad Gateway"), TimedOut()):
        assert isinstance(map_send_error(exc, 111, redact), TransientChannelError)

    leaky = map_send_error(
        NetworkError(f"failed for https://api.telegram.org/bot{TOKEN}/sendMessage"), 1, redact
    )
    assert TOKEN not in str(leaky) and "<bot-token>" in str(leaky)


def test_library_log_lines_lose_the_token(caplog):
    log_filter = RedactingFilter(Redactor(TOKEN))
    log_filter.install()
    try:
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"):
            logging.getLogger("httpx").info(
                "HTTP Request: POST %s", f"https://api.telegram.org/bot{TOKEN}/getMe"
            )
            logging.getLogger("httpx").info(
                "GET https://api.telegram.org/file/bot7000001%3AAAE-fake-token-QkZ9sTt3uVwXyZ_0123456789/x"
            )
    finally:
        log_filter.remove()
    text = caplog.text
    assert "AAE-fake-token" not in text and text.count("<bot-token>") == 2


# -- settings --------------------------------------------------------------------------------------


def test_mode_defaults_to_webhook_only_with_a_public_https_url():
    config = TelegramConfig()
    assert config.effective_mode("https://inbox.example.com") is Mode.WEBHOOK
    assert config.effective_mode("http://127.0.0.1:8080") is Mode.POLLING
    assert TelegramConfig(mode=Mode.POLLING).effective_mode("https://inbox.example.com") is Mode.POLLING


async def test_invalid_settings_make_a_channel_that_fails_sends_saying_why_without_the_token():
    info = ChannelInfo(
        id=9,
        account_id=1,
        inbox_id=1,
        kind=ChannelKind.TELEGRAM,
        name="broken",
        config={"bot_token": TOKEN, "webhook_secret": "has spaces!", "mode": "carrier-pigeon"},
    )

    class Deps:
        state = None
        media = None
        public_url = "http://127.0.0.1:8080"

    adapter = telegram_channel(info, Deps())  # type: ignore[arg-type]
    with pytest.raises(PermanentChannelError) as caught:
        await adapter.send(OutboundMessage(message_id=1, channel_id=9, to="111", text="hi"))
    assert caught.value.reason == Reason.CHANNEL_ERROR
    assert "webhook_secret" in caught.value.detail and "mode" in caught.value.detail
    assert TOKEN not in caught.value.detail and "has spaces" not in caught.value.detail
