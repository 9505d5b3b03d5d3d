"""Server texts: every message the code marks is translated in every catalog, with the same fields;
languages negotiate the way people and browsers name them; numbers and dates follow the language."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from inbox.i18n import SUPPORTED_LANGUAGES, catalog_path, negotiate, translator

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("inbox", "routing", "bots", "gateway", "channels")
OTHER_LANGUAGES = [lang for lang in SUPPORTED_LANGUAGES if lang != "en"]


def marked_messages() -> dict[str, str]:
    """msgid → where it is used, for every gettext / ngettext / N_ call in the code (Babel's extractor)."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for filename, lineno, message, _, _ in extract_from_dir(ROOT / package, [("**.py", "python")]):
            for msgid in (message,) if isinstance(message, str) else message:
                if msgid:
                    found.setdefault(msgid, f"{package}/{filename}:{lineno}")
    return found


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_code_marks_messages():
    assert "Usage: {used}" in marked_messages()  # the quota alert mail: the extractor sees real calls


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_marked_message_is_translated_with_the_same_fields(language):
    with catalog_path(language).open("rb") as f:
        catalog = read_po(f)
    problems = []
    for msgid, where in marked_messages().items():
        entry = catalog.get(msgid)
        if entry is None:
            # An ngettext's singular or plural: both are marked, one entry holds them.
            entry = next((m for m in catalog if isinstance(m.id, tuple) and msgid in m.id), None)
        if entry is None or not entry.string or "fuzzy" in entry.flags:
            problems.append(f"untranslated: {msgid!r} ({where})")
            continue
        forms = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if any(not form for form in forms):
            problems.append(f"a plural form is empty: {msgid!r}")
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        if any(fields(form) != fields(ids[-1]) | fields(ids[0]) for form in forms):
            problems.append(f"other fields than the English: {msgid!r}")
    assert problems == []


@pytest.mark.parametrize(
    ("said", "language"),
    [
        ("pt-BR", "pt-BR"),
        ("pt_br", "pt-BR"),
        ("PT", "pt-BR"),
        ("pt-PT", "pt-BR"),
        ("en-GB", "en"),
        ("de-DE", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_negotiate(said, language):
    assert negotiate(said) == language


def test_negotiate_takes_the_first_candidate_that_fits():
    assert negotiate("de", "pt-BR", "en") == "pt-BR"


def test_portuguese_texts_numbers_and_dates():
    tr = translator("pt-BR")
    assert tr.gettext("Usage: {used}", used=tr.number(1400)) == "Uso: 1.400"
    assert translator("en").gettext("Usage: {used}", used=translator("en").number(1400)) == "Usage: 1,400"
    assert tr.datetime(datetime(2026, 4, 1, tzinfo=UTC)) == "2026-04-01 00:00"


def test_an_unknown_language_speaks_english():
    tr = translator("xx-YY")
    assert tr.language == "en"
    assert tr.gettext("Limit: {limit}", limit="5") == "Limit: 5"


def test_catalog_files_are_where_the_languages_say():
    for language in OTHER_LANGUAGES:
        assert re.fullmatch(r"[a-z]{2}_[A-Z]{2}", catalog_path(language).parent.parent.name)
        assert catalog_path(language).exists()
