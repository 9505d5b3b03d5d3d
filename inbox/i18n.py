"""Server texts in a language: gettext catalogs compiled by Babel, numbers and dates in its conventions.

English is the source language: the messages in the code are the English texts (``msgid``), and each
other language has ``inbox/locale/<ll_CC>/LC_MESSAGES/messages.po`` beside this module. Nothing is
compiled ahead: the first ``translator(language)`` of a process reads the ``.po`` file and compiles it
in memory with Babel (a few milliseconds), so there is no ``.mo`` file to build, commit or keep in step.
``make messages`` re-extracts the messages from the code into the catalogs; tests/inbox/test_i18n.py
fails on a message the code uses that a catalog does not translate.

Placeholders are ``str.format`` fields: ``tr.gettext("{count} messages", count=3)``. Languages are
BCP 47 tags as the web pages use them (``en``, ``pt-BR``); ``negotiate`` maps what a person or a
browser says (``pt``, ``pt_br``, ``pt-PT``) onto a supported one, English when none fits.
"""

from __future__ import annotations

import functools
import gettext
import io
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, get_args

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import tables as t

Language = Literal["en", "pt-BR"]  # what an account or a user may choose (API bodies validate against it)
DEFAULT_LANGUAGE: Final = "en"
SUPPORTED_LANGUAGES: Final[tuple[str, ...]] = get_args(Language)
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "messages"


def negotiate(*candidates: str | None) -> str:
    """The first candidate a supported language fits (exactly, else by its primary subtag); else English."""
    for tag in candidates:
        if not tag:
            continue
        wanted = tag.strip().replace("_", "-").lower()
        for language in SUPPORTED_LANGUAGES:
            if wanted == language.lower():
                return language
        primary = wanted.split("-", 1)[0]
        for language in SUPPORTED_LANGUAGES:
            if language.lower().split("-", 1)[0] == primary:
                return language
    return DEFAULT_LANGUAGE


async def account_language(session: AsyncSession, account_id: int) -> str:
    """The language of the account's server texts (alert mails, confirmations)."""
    return negotiate(await session.scalar(select(t.Account.language).where(t.Account.id == account_id)))


async def user_language(session: AsyncSession, user: t.User) -> str:
    """The language of a user's pages: their own choice, else their account's."""
    return negotiate(user.language) if user.language else await account_language(session, user.account_id)


def catalog_path(language: str) -> Path:
    """Where a language's ``.po`` file lives (``pt-BR`` → ``locale/pt_BR/LC_MESSAGES/messages.po``)."""
    return LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / f"{DOMAIN}.po"


class Translator:
    """One language's texts and formats. Get one with ``translator(language)``."""

    def __init__(self, language: str, translations: gettext.NullTranslations) -> None:
        self.language = language
        self.locale = Locale.parse(language, sep="-")
        self._translations = translations

    def gettext(self, message: str, /, **params: object) -> str:
        """The translation of ``message`` (the English text when it has none), fields filled in."""
        text = self._translations.gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, count: int, /, **params: object) -> str:
        """The form for ``count`` in this language's plural rules; ``{count}`` is the formatted number."""
        text = self._translations.ngettext(singular, plural, count)
        return text.format(count=self.number(count), **params)

    def number(self, value: int | float) -> str:
        """``1400`` → ``1,400`` in English, ``1.400`` in Portuguese."""
        return format_decimal(value, locale=self.locale)

    def datetime(self, value: datetime, pattern: str = "yyyy-MM-dd HH:mm") -> str:
        """A date and time in the given CLDR pattern, in the value's own time zone."""
        return format_datetime(value, pattern, tzinfo=value.tzinfo, locale=self.locale)


def _compiled(language: str) -> gettext.NullTranslations:
    path = catalog_path(language)
    if language == DEFAULT_LANGUAGE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=language.replace("-", "_"), domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)  # a fuzzy entry is a guess: English until reviewed
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def translator(language: str | None) -> Translator:
    """The translator of a supported language (anything else negotiates to one); compiled once a process."""
    return _translator(negotiate(language))


@functools.cache  # keyed by supported languages only: what a browser says never grows it
def _translator(language: str) -> Translator:
    return Translator(language, _compiled(language))


def N_(message: str) -> str:  # the gettext name Babel's extractor looks for
    """Marks a message kept for later (a default in a table) for extraction; translate it where used."""
    return message
