"""The FAQ matcher: the entry whose question and keywords cover most of the contact's words.

Not a language model: a confident answer needs at least ``threshold`` of the question's content words
to appear in one entry, and that entry must beat the runner-up; otherwise the bot hands off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bots.flow import FaqEntry
from inbox.folding import words

# Words that carry no topic in questions (en, pt, es, de, fr), folded.
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "from",
        "with",
        "about",
        "as",
        "by",
        "please",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
        "there",
        "here",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "any",
        "o",
        "os",
        "as",
        "e",
        "ou",
        "um",
        "uma",
        "de",
        "do",
        "da",
        "dos",
        "das",
        "em",
        "no",
        "na",
        "nos",
        "nas",
        "que",
        "qual",
        "como",
        "quando",
        "onde",
        "por",
        "para",
        "com",
        "meu",
        "minha",
        "voce",
        "eu",
        "ola",
        "obrigado",
        "el",
        "la",
        "los",
        "las",
        "y",
        "en",
        "es",
        "mi",
        "usted",
        "hola",
        "gracias",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "ein",
        "eine",
        "ich",
        "sie",
        "wie",
        "wo",
        "was",
        "mein",
        "le",
        "les",
        "et",
        "est",
        "un",
        "une",
        "je",
        "vous",
        "mon",
        "ma",
        "comment",
        "ou",
        "quoi",
    ]
)


def content_words(text: str) -> set[str]:
    """Folded words minus stop words, with a plural ``s`` dropped so "prices" meets "price"."""
    out: set[str] = set()
    for w in words(text):
        if w in _STOP or len(w) < 2:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry | None
    score: float
    confident: bool


def best_answer(entries: Sequence[FaqEntry], question: str, threshold: float) -> FaqMatch:
    asked = content_words(question)
    if not asked:
        return FaqMatch(None, 0.0, False)
    scored: list[tuple[float, int]] = []
    for i, entry in enumerate(entries):
        known = content_words(entry.question)
        for keyword in entry.keywords:
            known |= content_words(keyword)
        scored.append((len(asked & known) / len(asked), i))
    scored.sort(key=lambda x: (-x[0], x[1]))
    best_score, best_i = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else 0.0
    confident = best_score >= threshold and best_score > runner_up
    return FaqMatch(entries[best_i] if best_score > 0 else None, best_score, confident)
