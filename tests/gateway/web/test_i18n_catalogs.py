"""The pages' message catalogs (gateway/static/i18n/*.json): every language has every key, with the same
placeholders, and every key the scripts ask for is in them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inbox.i18n import SUPPORTED_LANGUAGES
from inbox.model import Reason

STATIC = Path(__file__).resolve().parents[3] / "gateway" / "static"
CATALOGS = STATIC / "i18n"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PLURAL = re.compile(r"\.(zero|one|two|few|many|other)$")
# t("key" / t('key' / t(`key` with no ${...}: a key the code names whole.
LITERAL_KEY = re.compile(r"""\bt\(\s*(["'`])([\w.-]+)\1""")
# t(`prefix.${x}`...): a family of keys; at least one key must start with the prefix.
TEMPLATE_KEY = re.compile(r"""\bt\(\s*`([\w.-]+)\$\{""")


def catalog(language: str) -> dict[str, str]:
    return json.loads((CATALOGS / f"{language}.json").read_text(encoding="utf-8"))


def scripts() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*.js"))


def test_there_is_a_catalog_for_every_supported_language_and_no_other():
    assert sorted(p.stem for p in CATALOGS.glob("*.json")) == sorted(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize("language", [lang for lang in SUPPORTED_LANGUAGES if lang != "en"])
def test_every_key_is_in_both_catalogs(language):
    english, other = catalog("en"), catalog(language)
    assert sorted(set(english) - set(other)) == [], f"missing in {language}.json"
    assert sorted(set(other) - set(english)) == [], "missing in en.json"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_texts_are_filled_and_keep_the_english_placeholders(language):
    english, other = catalog("en"), catalog(language)
    for key, text in other.items():
        assert isinstance(text, str) and text.strip(), f"{language}.json: {key} is empty"
        if key in english:
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), (
                f"{language}.json: {key} has other placeholders than en.json"
            )


def test_plural_keys_have_the_other_form():
    for key in catalog("en"):
        match = PLURAL.search(key)
        if match:
            assert key[: match.start()] + ".other" in catalog("en"), f"{key} has no .other form"


def test_every_key_the_scripts_ask_for_is_in_the_catalog():
    keys = set(catalog("en"))
    stems = {PLURAL.sub("", k) for k in keys}
    missing: list[str] = []
    for path in scripts():
        source = path.read_text(encoding="utf-8")
        name = path.relative_to(STATIC)
        for _, key in LITERAL_KEY.findall(source):
            if key not in keys and key not in stems:
                missing.append(f"{name}: {key}")
        for prefix in TEMPLATE_KEY.findall(source):
            if not any(k.startswith(prefix) for k in keys):
                missing.append(f"{name}: {prefix}*")
    assert missing == []


def test_the_check_finds_a_key_missing_from_a_catalog():
    # The checks above would pass vacuously if the patterns matched nothing: they see real calls.
    found = {key for p in scripts() for _, key in LITERAL_KEY.findall(p.read_text(encoding="utf-8"))}
    assert "login.sign_in" in found
    assert LITERAL_KEY.findall('x = t("nowhere.key", { a: 1 })') == [('"', "nowhere.key")]
    assert "nowhere.key" not in catalog("en")


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_refusal_reason_has_words_for_the_agent(language):
    # format.js reasonText shows "reason.<code>"; a code without one would show as "Not sent (code)".
    texts = catalog(language)
    assert sorted(r.value for r in Reason if f"reason.{r.value}" not in texts) == []
