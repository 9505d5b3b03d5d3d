"""The flow parser and the FAQ matcher on their own: any text either loads or fails with FlowInvalid."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bots.faq import best_answer
from bots.flow import FaqEntry, FlowInvalid, load_flow, parse_source
from inbox.buttons import chosen, render

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_any_source_text_loads_or_fails_cleanly(source: str):
    try:
        load_flow("flow", parse_source(source))
    except FlowInvalid as exc:
        assert exc.problems and all(p["field"] and p["problem"] for p in exc.problems)


@settings(max_examples=300)
@given(st.sampled_from(["flow", "faq"]), json_values)
def test_any_json_definition_loads_or_fails_cleanly(kind: str, definition):
    try:
        load_flow(kind, definition)
    except FlowInvalid as exc:
        assert all(p["field"].startswith("definition") for p in exc.problems)


def test_loops_without_input_are_refused():
    with pytest.raises(FlowInvalid) as err:
        load_flow(
            "flow",
            {
                "start": "a",
                "states": {
                    "a": {"branch": {"cases": [{"attribute": "x", "next": "b"}], "otherwise": "b"}},
                    "b": {"say": "again", "next": "a"},
                },
            },
        )
    assert err.value.problems == [
        {"field": "definition.states", "problem": "a → b → a loops without waiting for the contact"}
    ]


ENTRIES = [
    FaqEntry(question="How do I reset my password?", answer="Use 'Forgot password'."),
    FaqEntry(question="Do you ship to Portugal?", answer="Yes, everywhere in the EU.", keywords=["delivery"]),
]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("I forgot my PASSWORD, how to reset?", "Use 'Forgot password'."),
        ("Entrega em Portugal? ship", "Yes, everywhere in the EU."),
        ("what about delivery to portugal", "Yes, everywhere in the EU."),
        ("tell me a joke", None),
        ("", None),
        ("password portugal", None),  # a tie is not confidence
    ],
)
def test_faq_answers_by_keyword_overlap_only_when_confident(question: str, answer: str | None):
    match = best_answer(ENTRIES, question, 0.5)
    assert (match.entry.answer if match.confident and match.entry else None) == answer


def test_buttons_native_where_possible_numbered_elsewhere():
    assert render("webchat", "Pick", ["A", "B"]) == ("Pick", ("A", "B"))
    assert render("whatsapp", "Pick", ["A", "B", "C"]) == ("Pick", ("A", "B", "C"))
    text, buttons = render("whatsapp", "Pick", ["A", "B", "C", "D"])  # WhatsApp allows 3 reply buttons
    assert buttons == () and "4. D" in (text or "")
    assert render("email", None, ["Yes"]) == ("1. Yes\n\nReply with the number of your choice.", ())
    assert chosen(["Sí, claro", "No"], "si, CLARO") == 0
    assert chosen(["Yes", "No"], "2.") == 1
    assert chosen(["Yes", "No"], "3") is None
