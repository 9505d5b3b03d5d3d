"""Keyword matching: the whole message after trim, case-fold and accent strip (DESIGN.md §3)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox.consent import DEFAULT_KEYWORDS, Keyword, match_keyword, normalize_keyword

ALL_DEFAULTS = [(kind, word) for kind, words in DEFAULT_KEYWORDS.items() for word in words]
ACCENTS = ["\u0301", "\u0300", "\u0302", "\u0303", "\u0308", "\u0327"]  # acute, grave, circumflex, ...


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Stop", Keyword.OPT_OUT),
        (" stop ", Keyword.OPT_OUT),
        ("PARÁR", Keyword.OPT_OUT),
        ("\tUnsubscribe\n", Keyword.OPT_OUT),
        ("sim", Keyword.OPT_IN),
        ("Sím", Keyword.OPT_IN),
        ("START", Keyword.OPT_IN),
        ("ajuda", Keyword.HELP),
        ("Descadastrar", Keyword.OPT_OUT),
        ("cancelar", Keyword.OPT_OUT),
        ("ACEITO", Keyword.OPT_IN),
        ("iniciar", Keyword.OPT_IN),
        ("stop please", None),
        ("please stop", None),
        ("st op", None),
        ("stop.", None),
        ("", None),
        (None, None),
    ],
)
def test_default_keywords(text: str | None, expected: Keyword | None):
    assert match_keyword(text, {}) == expected


def test_channel_lists_replace_the_defaults():
    config = {"opt_out_keywords": ["Baja", "Cancelar"], "opt_in_keywords": ["Alta"]}
    assert match_keyword("BAJA", config) == Keyword.OPT_OUT
    assert match_keyword("alta", config) == Keyword.OPT_IN
    assert match_keyword("stop", config) is None  # replaced, not merged
    assert match_keyword("help", config) == Keyword.HELP  # lists not given keep their defaults


@st.composite
def disguised_keyword(draw: st.DrawFn) -> tuple[Keyword, str]:
    """A default keyword with random case, accents on its letters and whitespace around it."""
    kind, word = draw(st.sampled_from(ALL_DEFAULTS))
    letters = []
    for ch in word:
        ch = ch.upper() if draw(st.booleans()) else ch.lower()
        if draw(st.booleans()):
            ch += draw(st.sampled_from(ACCENTS))
        letters.append(ch)
    text = "".join(letters)
    if draw(st.booleans()):
        text = unicodedata.normalize("NFC", text)  # precomposed, as phones send it
    pad = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=4)
    return kind, draw(pad) + text + draw(pad)


@given(disguised_keyword())
def test_any_case_accent_and_padding_of_a_keyword_matches(case: tuple[Keyword, str]):
    kind, text = case
    assert match_keyword(text, {}) == kind


@given(disguised_keyword(), st.text(min_size=1).filter(lambda s: normalize_keyword(s) != ""))
def test_a_keyword_with_more_words_does_not_match(case: tuple[Keyword, str], more: str):
    _, text = case
    assert match_keyword(text + " " + more, {}) is None


@given(st.text())
def test_normalizer_is_idempotent_trimmed_and_accent_free(text: str):
    once = normalize_keyword(text)
    assert normalize_keyword(once) == once
    assert once == once.strip()
    assert not any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", once))
    if text.isascii():
        # Runs of whitespace inside count as one space ("0\r0" is "0 0"), as in fold().
        expected = " ".join(text.split()).lower()
        assert normalize_keyword(text.upper()) == normalize_keyword(text.lower()) == expected


async def test_a_tapped_button_titled_yes_is_not_an_opt_in(tmp_path):
    """Keywords are words the contact typed; a button answering a question is not consent."""
    from inbox import tables as t
    from inbox.model import InboundMessage
    from tests.harness import start_gateway

    gw = await start_gateway(tmp_path)
    try:
        async with gw.container.db.write() as session:
            row = await session.get(t.Channel, 1)
            assert row is not None
            row.config = {**row.config, "consent": True}

        async def consent_after(provider_id: str, sender: str, content_type: str) -> str:
            received = await gw.container.pipeline.receive(
                InboundMessage(
                    channel_id=1,
                    provider_message_id=provider_id,
                    sender=sender,
                    text="Yes",
                    content_type=content_type,
                )
            )
            _, conversation = await gw.api("GET", f"/conversations/{received.conversation_id}")
            status, body = await gw.api("GET", f"/contacts/{conversation['contact_id']}/consent")
            assert status == 200
            return {c["channel_id"]: c["state"] for c in body["channels"]}.get(1, "unknown")

        assert await consent_after("tap-1", "+15557770000", "interactive") == "unknown"
        assert await consent_after("typed-1", "+15557770001", "text") == "opted_in"
    finally:
        await gw.close()
