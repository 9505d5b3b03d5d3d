"""Conditions on their own: case- and accent-insensitive text, regexes, attributes, groups."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from inbox.folding import fold
from routing.rules import CONDITIONS, Facts, RuleSpec, matches
from routing.text import guess_language


def facts(text: str = "", **overrides) -> Facts:
    base = {
        "channel_kind": "whatsapp",
        "inbox_id": 1,
        "text": fold(text),
        "language": guess_language(text),
        "contact_attributes": {"plan": "Pró", "orders": 3},
        "contact_labels": frozenset({"vip"}),
        "consent": "opted_in",
        "business_open": True,
        "new_conversation": True,
    }
    return Facts(**{**base, **overrides})


def check(conditions: list[dict], f: Facts, match: str = "all") -> bool:
    return matches(match, CONDITIONS.validate_python(conditions), f)


@pytest.mark.parametrize(
    ("op", "value", "text", "expected"),
    [
        ("contains", "AÇÃO", "uma acao rapida", True),
        ("equals", "sim", "  SÍM ", True),
        ("equals", "sim", "sim senhor", False),
        ("starts_with", "urgent", "Urgent: help", True),
        ("starts_with", "urgent", "not urgent", False),
        ("regex", r"pedido\s+#?\d{4}", "Meu PEDIDO #1234 não chegou", True),
        ("regex", r"^\d+$", "12a", False),
        ("regex", "ação", "ACAO", True),
    ],
)
def test_text_conditions_ignore_case_and_accents(op, value, text, expected):
    assert check([{"type": "text", "op": op, "value": value}], facts(text)) is expected


def test_attributes_labels_language_consent_and_groups():
    f = facts("Where is my parcel? Can you help me with this")
    assert check([{"type": "contact_attribute", "key": "plan", "value": "pro"}], f)
    assert check([{"type": "contact_attribute", "key": "orders", "value": 3}], f)
    assert not check([{"type": "contact_attribute", "key": "missing", "op": "exists"}], f)
    assert check([{"type": "contact_label", "label": "VIP"}], f)
    assert check([{"type": "language", "languages": ["en"]}], f)
    assert check([{"type": "consent", "state": "opted_in"}], f)
    assert check([{"type": "business_hours", "open": False, "negate": True}], f)
    assert check(
        [
            {"type": "channel_kind", "kinds": ["email"]},
            {
                "type": "group",
                "match": "all",
                "conditions": [{"type": "inbox", "inbox_ids": [1]}, {"type": "new_conversation"}],
            },
        ],
        f,
        match="any",
    )
    assert not check([{"type": "channel_kind", "kinds": ["email"]}, {"type": "inbox", "inbox_ids": [1]}], f)
    assert check([], f)  # a rule with no conditions matches everything


def test_language_guess_is_modest():
    assert guess_language("Onde está o meu pedido? Não chegou") == "pt"
    assert guess_language("Wo ist mein Paket? Ich habe nichts") == "de"
    assert guess_language("ok") is None


def test_a_bad_regex_is_refused_at_validation():
    with pytest.raises(ValidationError):
        RuleSpec.model_validate(
            {
                "name": "x",
                "conditions": [{"type": "text", "op": "regex", "value": "[z-a]"}],
                "actions": [{"type": "resolve"}],
            }
        )


@given(st.text())
def test_fold_is_idempotent_and_case_free(text: str):
    once = fold(text)
    assert fold(once) == once
    assert fold(text.upper()) == fold(text.lower()) or not text.isascii()
