"""No page shows English the catalogs do not know: every user-visible string literal in the page scripts
(gateway/static/js/*.js and the widget) goes through t(). A new page with a bare "Save" fails here.

The scripts are read as JavaScript tokens (strings, templates, punctuation, names), not as lines: a literal
is user-visible text when it is
- a child of h("tag", props, ...children), or the value of a text property (text, title, placeholder,
  label, alt, aria-*), or assigned to .textContent/.title/.placeholder/.innerText, or the label of
  option(value, label), or what toast/confirm/alert/prompt show; any letters there count;
- anywhere else, prose: a capitalised word ("Name") or two words ("next conversation"), unless it sits
  where only codes go (object keys, class/id/type/... values, tag names, t() keys, comparisons, paths,
  selectors, event names, HTTP methods and headers).
ALLOWED lists the few literals that are text but not language (the product's name, a region code).
Not seen: a lone lowercase word outside those places (return "now"): review catches what this cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[3] / "gateway" / "static"


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Literals that look like words but are the same in every language.
ALLOWED = {
    "Switchboard",  # the product's name (page header, sign-in)
    "English",  # i18n.js LANGUAGE_NAMES: each language named in itself
    "Português (Brasil)",
    "BR",  # contacts.js: the example region code in the import form
    "en_US",  # thread.js: a template's language code when the provider gives none
    "Ctrl+Enter",  # shortcuts.js: key names, printed on the keys
    "Esc",
    "use strict",  # widget.js: the directive
}

TEXT_PROPS = words(
    "text title placeholder label alt summary caption aria-label aria-description aria-placeholder "
    "aria-roledescription aria-valuetext"
)
TEXT_ASSIGNED = {"textContent", "innerText", "title", "placeholder", "alt"}
SHOWN_BY = {"toast", "confirm", "alert", "prompt"}
# Calls whose every literal argument is a code: catalog keys, paths, selectors, events, attributes.
CODE_CALLS = words(
    "t textOr hasText import require api optional firstAvailable fetch upload querySelector "
    "querySelectorAll closest matches $ addEventListener removeEventListener dispatchEvent Event "
    "CustomEvent setAttribute getAttribute removeAttribute hasAttribute toggleAttribute add remove "
    "toggle contains setRequestHeader open get set has delete getItem setItem removeItem startsWith "
    "endsWith includes split replace replaceAll indexOf join padStart slice WebSocket URL "
    "URLSearchParams createElement DateTimeFormat NumberFormat PluralRules RelativeTimeFormat "
    "localeCompare log warn error debug info postMessage getElementById toLocaleString "
    "toLocaleDateString toLocaleTimeString format catalogPath"
)
# Object keys whose values are codes, never text.
CODE_PROPS = words(
    "class className id type name href src rel role autocomplete style pattern target loading "
    "referrerPolicy sandbox method credentials accept value kind status mode state key for htmlFor "
    "data dateStyle timeStyle hour minute month day year weekday currency unit numeric code reason "
    "origin format inputMode enterKeyHint dir lang headers mark icon channel view scope Accept "
    "priority field op sort order group_by tier language content_type media size block behavior "
    "inline cache redirect mimeType"
)
PROSE = re.compile(r"\b[A-Z][a-z]{1,}|[A-Za-z]{2,}[^\S\n]+[A-Za-z]{2,}")
LETTERS = re.compile(r"[^\W\d_]{2,}")
# Paths, selectors, URLs and catalog keys; markup and CSS rules ("<svg ...>", "a{b:c}", "color:#fff;").
CODE_SHAPE = re.compile(r"^[/#.\[?&]|://|^[a-z][\w-]*(\.[\w-]+)+$|^[\w-]+(/[\w-]*)+")
MARKUP_OR_CSS = re.compile(r"^<[a-z]|^:host\b|^\*\{|[\w-]\{|^[\w-]+:[^;{}]*[;}]|^https?://")
REGEX_BEFORE = set("(,=:[!&|?{};+-*%<>~^")
KEYWORDS_BEFORE_VALUE = words("return typeof case of in yield await else do throw new")
NOT_CALLS = words("if while for switch return catch function typeof await")  # "(" after these
NAME = re.compile(r"[A-Za-z_$][\w$]*|\d[\w.]*")


@dataclass
class Token:
    kind: str  # "str" (a quoted string or a template, ${...} holes as {}), "name", "punct"
    text: str
    line: int


def tokens(source: str) -> list[Token]:
    """JavaScript tokens: enough of the grammar for strings, templates, comments and regex literals."""
    out: list[Token] = []
    n = len(source)

    def line_at(i: int) -> int:
        return source.count("\n", 0, i) + 1

    def template(i: int) -> int:
        # i is just after the opening backtick; the holes' own tokens follow the template's.
        start, at, parts = i, len(out), []
        while i < n:
            c = source[i]
            if c == "\\":
                parts.append(source[i : i + 2])
                i += 2
            elif c == "`":
                out.insert(at, Token("str", "".join(parts), line_at(start)))
                return i + 1
            elif source.startswith("${", i):
                parts.append("{}")
                i = code(i + 2, inside_hole=True)
            else:
                parts.append(c)
                i += 1
        return i

    def code(i: int, inside_hole: bool = False) -> int:
        depth = 0
        while i < n:
            c = source[i]
            if c.isspace():
                i += 1
            elif source.startswith("//", i):
                end = source.find("\n", i)
                i = n if end < 0 else end
            elif source.startswith("/*", i):
                end = source.find("*/", i)
                i = n if end < 0 else end + 2
            elif c in "\"'":
                j = i + 1
                while j < n and source[j] != c:
                    j += 2 if source[j] == "\\" else 1
                out.append(Token("str", source[i + 1 : j], line_at(i)))
                i = j + 1
            elif c == "`":
                i = template(i + 1)
            elif c == "/" and regex_may_start():
                i = skip_regex(i)
            elif m := NAME.match(source, i):
                out.append(Token("name", m.group(0), line_at(i)))
                i = m.end()
            else:
                if c == "{":
                    depth += 1
                elif c == "}":
                    if inside_hole and depth == 0:
                        return i + 1
                    depth -= 1
                if source.startswith("=>", i):
                    out.append(Token("punct", "=>", line_at(i)))
                    i += 2
                    continue
                out.append(Token("punct", c, line_at(i)))
                i += 1
        return i

    def regex_may_start() -> bool:
        if not out:
            return True
        last = out[-1]
        if last.kind == "name":
            return last.text in KEYWORDS_BEFORE_VALUE
        return last.kind == "punct" and (last.text in REGEX_BEFORE or last.text == "=>")

    def skip_regex(i: int) -> int:
        j, in_class = i + 1, False
        while j < n and source[j] != "\n":
            if source[j] == "\\":
                j += 2
                continue
            if source[j] == "[":
                in_class = True
            elif source[j] == "]":
                in_class = False
            elif source[j] == "/" and not in_class:
                break
            j += 1
        j += 1
        while j < n and source[j].isalpha():
            j += 1
        out.append(Token("punct", "regex", line_at(i)))
        return j

    code(0)
    return out


@dataclass
class Frame:
    opener: str  # ( [ { or "block" (a { that opens statements, not an object)
    # The name before "(" (h, t, option...); "[data]" / "[index]" for arrays and subscripts.
    callee: str | None
    arg: int = 0  # which argument (or element) of the call we are in
    key: str | None = None  # in an object: the key whose value we are in
    expect_key: bool = True


def english_literals(source: str) -> list[tuple[int, str]]:
    """(line, literal) for every literal that shows text a person reads and is not passed through t()."""
    found: list[tuple[int, str]] = []
    stack: list[Frame] = []
    toks = tokens(source)
    closers = matching(toks)
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        top = stack[-1] if stack else None
        if tok.kind == "punct":
            if tok.text in "([{":
                callee = None
                if (
                    tok.text == "("
                    and prev is not None
                    and prev.kind == "name"
                    and prev.text not in NOT_CALLS
                ):
                    callee = prev.text
                elif tok.text == "[" and (data_array(toks, i, closers) or subscript(prev)):
                    # ["a", "b"].map(...) is data (not children); headers["Content-Type"] holds a code.
                    callee = "[index]" if subscript(prev) else "[data]"
                opener = tok.text
                if opener == "{" and not object_literal(prev):
                    opener = "block"  # a function body, if/else, try...: its ":" are ternaries and labels
                stack.append(Frame(opener, callee))
            elif tok.text in ")]}" and stack:
                stack.pop()
            elif tok.text == "," and top is not None:
                top.arg += 1
                top.key, top.expect_key = None, True
            elif tok.text == ":" and top is not None and top.opener == "{" and top.expect_key:
                top.key = prev.text if prev is not None else None
                top.expect_key = False
            continue
        if tok.kind != "str":
            continue
        text = tok.text
        if text in ALLOWED or not LETTERS.search(text.replace("{}", " ")):
            continue
        if nxt is not None and nxt.text == ":" and top is not None and top.opener == "{" and top.expect_key:
            continue  # an object key ("aria-label": ...)
        if visible(text, toks, i, stack):
            found.append((tok.line, text))
    return found


def visible(text: str, toks: list[Token], i: int, stack: list[Frame]) -> bool:
    prev = toks[i - 1] if i else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    # The innermost call or object the literal is directly in (arrays and groupings pass through).
    frames = [f for f in stack if f.callee is not None or f.opener == "{"]
    if stack and stack[-1].opener == "block":
        frames = []  # a statement of its own (return "x"): only the prose rule applies
    near = frames[-1] if frames else None
    if near is not None and (near.callee in CODE_CALLS or near.callee == "[index]"):
        return False
    if near is not None and near.opener == "{" and near.key in CODE_PROPS:
        return False
    if assigned_to(toks, i) in CODE_PROPS:
        return False  # el.className = `quota-banner tier-${n}`
    # Comparisons and switch cases hold codes (e.key === "Enter", case "message.created").
    if prev is not None and prev.text in {"=", "!"} and i >= 2 and toks[i - 2].text in {"=", "!"}:
        return False
    if nxt is not None and nxt.text in {"=", "!"} and i + 2 < len(toks) and toks[i + 2].text == "=":
        return False
    if prev is not None and prev.text in {"case", "from", "import", "in", "instanceof"}:
        return False
    if MARKUP_OR_CSS.search(text):
        return False
    if sink(toks, i, near):
        return not (near is not None and near.callee == "h" and near.arg == 0)
    if near is not None and near.callee == "h" and near.arg == 0:
        return False  # the tag name
    if CODE_SHAPE.search(text) or text.isupper():
        return False
    return bool(PROSE.search(text.replace("{}", " ")))


def sink(toks: list[Token], i: int, near: Frame | None) -> bool:
    """Whether the literal lands where the page shows text."""
    if near is not None:
        if near.opener == "(" and near.callee == "h" and near.arg >= 2:
            return True
        if near.opener == "(" and near.callee in SHOWN_BY:
            return True
        if near.opener == "(" and near.callee == "clear" and near.arg >= 1:
            return True
        if near.opener == "(" and near.callee == "option" and near.arg == 1:
            return True
        if near.opener == "{" and near.key in TEXT_PROPS:
            return True
    return assigned_to(toks, i) in TEXT_ASSIGNED  # el.textContent = "..." (or x ? "A" : "B")


def assigned_to(toks: list[Token], i: int) -> str | None:
    """The property a literal is assigned to (el.NAME = ... "literal"), if it is in an assignment."""
    j = i - 1
    while j >= 0 and toks[j].text not in {";", "{", "}", "=", "(", ","}:
        j -= 1
    if j >= 2 and toks[j].text == "=" and toks[j - 1].kind == "name" and toks[j - 2].text == ".":
        return toks[j - 1].text
    return None


def matching(toks: list[Token]) -> dict[int, int]:
    """Index of each opening bracket -> index of its closing one."""
    pairs: dict[int, int] = {}
    open_at: list[int] = []
    for i, tok in enumerate(toks):
        if tok.kind == "punct" and tok.text in "([{":
            open_at.append(i)
        elif tok.kind == "punct" and tok.text in ")]}" and open_at:
            pairs[open_at.pop()] = i
    return pairs


def data_array(toks: list[Token], i: int, closers: dict[int, int]) -> bool:
    """An array literal used as data: a method is called on it (["a", "b"].map(...))."""
    end = closers.get(i)
    return end is not None and end + 1 < len(toks) and toks[end + 1].text == "."


def object_literal(prev: Token | None) -> bool:
    """Whether a "{" after this token opens an object (in an expression) rather than a block."""
    return prev is None or prev.text in {"(", ",", "=", ":", "[", "?", "|", "&", "return", "!", "+"}


def subscript(prev: Token | None) -> bool:
    """Whether a "[" after this token indexes (headers["Accept"]) rather than opens an array."""
    named = prev is not None and prev.kind == "name" and prev.text not in KEYWORDS_BEFORE_VALUE
    return named or (prev is not None and prev.text in {")", "]"})


def page_scripts() -> list[Path]:
    return sorted([*STATIC.glob("js/*.js"), STATIC / "widget.js"])


@pytest.mark.parametrize("path", page_scripts(), ids=lambda p: p.name)
def test_no_english_literal_outside_the_catalogs(path: Path):
    leftovers = [f"{path.name}:{line}: {text!r}" for line, text in english_literals(path.read_text("utf-8"))]
    assert leftovers == [], "put these through t() with keys in both catalogs (or, if not language, ALLOWED)"


@pytest.mark.parametrize(
    "snippet",
    [
        'h("button", { class: "primary" }, "Save")',
        'h("p", {}, ok ? t("x.y") : "Nothing here")',
        'h("p", {}, [h("strong", {}, "Note:"), " more"])',
        'h("li", {}, `Contact ${c.id}`)',
        'h("input", { placeholder: "search", "aria-label": "Search" })',
        'el.textContent = done ? "Hide" : "show";',
        'option("", "None", v)',
        'toast("saved")',
        'section("Channels", body)',
        'const words = { open: "next conversation" };',
        "function name(u, id) { return u ? u.name : `User ${id}`; }",
        'throw new ApiError(0, "network", "The server cannot be reached.");',
    ],
)
def test_the_check_sees_english_wherever_a_page_shows_it(snippet: str):
    assert english_literals(snippet) != [], snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'h("button", { class: "small-button primary", id: "send" }, t("composer.send"))',
        'import { t } from "./i18n.js";',
        'api("GET", `/contacts/${id}`)',
        'if (e.key === "Enter") submit();',
        "el.querySelector(\"[data-id='3']\")",
        'h("span", {}, `#${p.id}`, " · ", "\u00d7")',
        'const x = { "aria-label": t("a.b"), style: "width: 3px" };',
        'box.addEventListener("keydown", f)',
        'h("h1", {}, "Switchboard")',
        'field("reports.filter.from", input)',
        'h("input", { type: "url", placeholder: "https://" })',
        'function f() { return ok ? a.name : "b"; }',
    ],
)
def test_the_check_leaves_codes_alone(snippet: str):
    assert english_literals(snippet) == [], snippet
