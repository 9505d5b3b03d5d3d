"""Reply ids a visitor's widget sends back (delivered / read receipts) are checked, never trusted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from channels.webchat.identity import owns_provider_id, provider_id

SECRET = "channel-secret"
ADDRESS = "anon:0123456789abcdef0123456789abcdef"


def test_a_reply_id_is_owned_by_its_visitor_only():
    pid = provider_id(SECRET, 42, ADDRESS)
    assert owns_provider_id(SECRET, pid, ADDRESS)
    assert not owns_provider_id(SECRET, pid, "anon:someone-else")
    assert not owns_provider_id("another-secret", pid, ADDRESS)


@given(st.text(max_size=40))
def test_any_text_from_the_widget_is_refused_without_an_error(text: str):
    # "wc-²-x": "²".isdigit() is true but int("²") fails; a receipt frame must not break the socket.
    for candidate in (text, f"wc-{text}-x", "wc-²-x", "wc-١٢-x"):
        assert owns_provider_id(SECRET, candidate, ADDRESS) is False
