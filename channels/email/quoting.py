"""Trimming quoted history and signatures from the text an agent is shown (the full text is kept)."""

from __future__ import annotations

import re

# A line that starts the quoted original. Clients: Gmail/Apple ("On … wrote:"), German Outlook/Gmail
# ("Am … schrieb …:"), French ("Le … a écrit :"), Outlook desktop ("-----Original Message-----" or a
# "From: … Sent: …" block), Outlook web (a line of underscores).
_QUOTE_HEADERS = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I | re.S),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,200}:\s*$", re.I | re.S),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I | re.S),
    re.compile(
        r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$", re.I
    ),
    re.compile(r"^\s*_{10,}\s*$"),
]
_OUTLOOK_FROM = re.compile(r"^\s*\*?(?:From|Von|De)\s*:\*?\s", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(?:Sent|Date|Gesendet|Envoyé|To|An|À|Subject|Betreff)\s*:\*?\s", re.I)
# Signature separators: RFC 3676 §4.3 "-- " and mobile footers.
_SIGNATURE = [
    re.compile(r"^-- ?$"),
    re.compile(r"^\s*(?:Sent from my|Von meinem|Envoyé de mon)\b.{0,60}$", re.I),
    re.compile(r"^\s*Get Outlook for\b.{0,40}$", re.I),
]


def trim_reply(text: str) -> str:
    """The new part of a reply: cut at the first quote header or signature, and drop a trailing
    block of ``>`` lines. Returns the text unchanged when trimming would leave nothing."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        two = line + " " + lines[i + 1] if i + 1 < len(lines) else line  # "On … \n wrote:" wraps
        if any(p.match(line) for p in _QUOTE_HEADERS) or (
            any(p.match(two) for p in _QUOTE_HEADERS[:3]) and not line.strip().startswith(">")
        ):
            cut = i
            break
        if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(n) for n in lines[i + 1 : i + 4]):
            cut = i
            break
        if any(p.match(line) for p in _SIGNATURE):
            cut = i
            break
        if line.startswith(">") and all(not x.strip() or x.startswith(">") for x in lines[i:]):
            cut = i
            break
    shown = "\n".join(lines[:cut]).strip()
    return shown or text.strip()
