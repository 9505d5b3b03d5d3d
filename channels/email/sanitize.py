"""HTML sanitizing with nh3 (ammonia) before any page shows an email body, and HTML → text."""

from __future__ import annotations

import html as htmllib
import re

import nh3

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRS = {
    "*": {"title", "dir", "lang", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "width"},
    "th": {"colspan", "rowspan", "width"},
    "font": {"color"},
}
# Content removed with the tag, not kept as text.
_DROP_WITH_CONTENT = {"script", "style", "title", "head", "noscript", "template", "iframe", "object"}


def sanitize_html(source: str, *, allow_remote_images: bool = False) -> str:
    """Safe HTML: no scripts, event handlers, styles or forms; links open safely; remote images
    (tracking pixels) are blocked unless allowed — ``cid:`` inline images stay."""

    def keep(tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src":
            lowered = value.strip().lower()
            if lowered.startswith("cid:"):
                return value
            if lowered.startswith(("http://", "https://")) and allow_remote_images:
                return value
            return None
        return value

    return nh3.clean(
        source,
        tags=_ALLOWED_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ALLOWED_ATTRS,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


_BLOCK_END = re.compile(r"(?i)<\s*(?:br\s*/?|/p|/div|/tr|/h[1-6]|/li|/blockquote|/table)\s*>")


def html_to_text(source: str) -> str:
    """Readable plain text of an HTML body (for mail that has no text part)."""
    marked = _BLOCK_END.sub("\n", source)
    stripped = nh3.clean(marked, tags=set(), clean_content_tags=_DROP_WITH_CONTENT, attributes={})
    text = htmllib.unescape(stripped)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
