"""Telling languages apart, on top of ``inbox.folding``."""

from __future__ import annotations

from inbox.folding import fold, words

__all__ = ["fold", "guess_language", "words"]

# A few very common words per language: enough to tell the languages our customers write in apart
# when a contact has no ``language`` attribute. Not a detector for arbitrary text.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "is",
            "are",
            "you",
            "my",
            "your",
            "what",
            "where",
            "when",
            "how",
            "can",
            "with",
            "have",
            "not",
            "this",
            "that",
            "for",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "e",
            "que",
            "nao",
            "meu",
            "minha",
            "voce",
            "com",
            "para",
            "por",
            "um",
            "uma",
            "esta",
            "onde",
            "como",
            "tem",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "y",
            "que",
            "no",
            "mi",
            "usted",
            "con",
            "para",
            "por",
            "un",
            "una",
            "esta",
            "donde",
            "como",
            "tiene",
            "es",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "mein",
            "meine",
            "sie",
            "mit",
            "fur",
            "ein",
            "eine",
            "wo",
            "wie",
            "ich",
            "haben",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "et",
            "est",
            "pas",
            "mon",
            "ma",
            "vous",
            "avec",
            "pour",
            "un",
            "une",
            "ou",
            "comment",
            "je",
            "avez",
            "ne",
        ]
    ),
}


def guess_language(text: str) -> str | None:
    """The language whose common words the text uses most; None when nothing stands out."""
    tokens = words(text)
    if not tokens:
        return None
    scores = {lang: sum(1 for w in tokens if w in stop) for lang, stop in _STOPWORDS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return None
    return best
