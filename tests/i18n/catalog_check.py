"""What the Swedish catalogs still lack, for the tests in this folder and for translators.

    .venv/bin/python -m tests.i18n.catalog_check [PATH ...]   # default: templates/ and app/

prints (1) visible English text in templates that is not marked for translation, file:line,
and (2) a .po stub of every marked message without a Swedish translation, ready to be filled
in and added to a file under app/locale/sv/LC_MESSAGES/.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from babel.messages.extract import extract
from jinja2.ext import babel_extract

from app import i18n
from app.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"
APP = PROJECT_ROOT / "app"
PY_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "pgettext": ((1, "c"), 2)}
JINJA_KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
                  "npgettext": ((1, "c"), 2, 3)}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}

# Words that read the same in both languages, or names (shown as they are).
SAME_IN_BOTH = {
    "API", "SEK", "CSV", "JSON", "OK", "Crowdmade", "English", "Svenska", "Stripe", "E-mail", "Email", "ID",
    "×", "Markdown", "htmx", "SVG", "PNG", "JPEG", "WebP", "URL", "A/B", "UTM", "A", "B",
}
VISIBLE_ATTRIBUTES = ("placeholder", "title", "alt", "aria-label", "aria-description", "label",
                      "data-confirm", "hx-confirm")
_BLOCKS = [
    re.compile(r"\{#.*?#\}", re.S),
    re.compile(r"\{%-?\s*trans\b.*?%\}.*?\{%-?\s*endtrans\s*-?%\}", re.S),
    re.compile(r"<script\b.*?</script>", re.S | re.I),
    re.compile(r"<style\b.*?</style>", re.S | re.I),
    re.compile(r"<svg\b.*?</svg>", re.S | re.I),
    re.compile(r"\{\{.*?\}\}", re.S),
    re.compile(r"\{%.*?%\}", re.S),
]
_WORD = re.compile(r"[A-Za-zÅÄÖåäö]{2,}")
_ATTR = re.compile(r"\b(" + "|".join(VISIBLE_ATTRIBUTES) + r")\s*=\s*(\"[^\"]*\"|'[^']*')", re.I)
_META_DESCRIPTION = re.compile(r'<meta name="description" content="([^"]*)"', re.I)
_TAG = re.compile(r"<[^>]*>", re.S)
_ENTITY = re.compile(r"&[#a-zA-Z0-9]+;")
_PLURALIZE = re.compile(r"pluralize\([^,]+,\s*['\"]([^'\"]+)['\"](?:\s*,\s*['\"]([^'\"]+)['\"])?\s*\)")


def _blank(match: re.Match) -> str:
    """Blank a removed block but keep its line breaks, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _needs_translation(text: str) -> bool:
    text = _ENTITY.sub(" ", text)
    words = _WORD.findall(text)
    return any(word not in SAME_IN_BOTH for word in words)


_CODE = re.compile(r"\{\{.*?\}\}|\{%(?!-?\s*(?:trans|pluralize)\b).*?%\}", re.S)
_LITERAL = re.compile(r"""(?<![\w.])(_\(\s*|gettext\(\s*|ngettext\(\s*|N_\(\s*)?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_CSS_LIKE = re.compile(r"^[a-z0-9_:/.#?=&-]*( [a-z0-9_:/.#?=&-]+)*$")


def literal_leftovers(source: str) -> list[tuple[int, str]]:
    """String literals inside template code that look like words for people ("View", a field's
    label or hint) and are not passed to _() / gettext / ngettext."""
    found = []
    for block in _CODE.finditer(source):
        code = block.group(0)
        if re.match(r"\{%-?\s*(extends|include|from|import|block|macro)\b", code):
            continue
        for match in _LITERAL.finditer(code):
            if match.group(1):
                continue
            text = match.group(2)[1:-1]
            before = code[:match.start()].rstrip()
            if before.endswith(("pluralize(", "|")) or re.search(r"(==|!=|in|startswith\(|get\(|\[)\s*$", before):
                continue  # a comparison, a dict key or pluralize's checked word pair
            bare = re.sub(r"\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'", '""', before)
            if before.endswith(",") and re.search(r"(pluralize|ngettext|pgettext|npgettext)\([^()]*$", bare):
                continue
            if not _needs_translation(text) or _CSS_LIKE.match(text) or "%" in text and " " not in text:
                continue
            found.append((source.count("\n", 0, block.start() + match.start()) + 1, f"literal {match.group(2)}"))
    return found


def template_leftovers(path: Path) -> list[tuple[int, str]]:
    """(line, text) of visible text in a template that no `{% trans %}` / `_()` covers."""
    source = path.read_text(encoding="utf-8")
    literals = literal_leftovers(re.sub(r"\{#.*?#\}", _blank, source, flags=re.S))
    if path.suffix == ".html" and "<meta property" in source:
        source = re.sub(r'<meta property="og:[^>]*>', _blank, source)
    for pattern in _BLOCKS:
        source = pattern.sub(_blank, source)
    found: list[tuple[int, str]] = []
    html = path.suffix in (".html", ".xml", ".svg")
    if html:
        for match in _META_DESCRIPTION.finditer(source):
            if _needs_translation(match.group(1)):
                found.append((source.count("\n", 0, match.start()) + 1, f'meta description "{match.group(1)}"'))
        for match in _ATTR.finditer(source):
            value = match.group(2)[1:-1]
            if _needs_translation(value):
                found.append((source.count("\n", 0, match.start()) + 1, f'{match.group(1)}="{value.strip()}"'))
        source = _TAG.sub(_blank, source)
    for number, line in enumerate(source.split("\n"), 1):
        if _needs_translation(line):
            found.append((number, line.strip()))
    return sorted(found + literals)


def hidden_in_fstrings(path: Path) -> list[tuple[int, str]]:
    """gettext calls inside an f-string: Babel cannot extract them (the catalogs would silently
    miss their message), so they must be called outside the f-string."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    name = getattr(inner.func, "id", None) or getattr(inner.func, "attr", None)
                    if name in ("gettext", "ngettext", "pgettext", "_", "N_"):
                        found.append((inner.lineno, f"{name}() inside an f-string"))
    return found


def template_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".html", ".txt") and p.is_file())
        elif path.suffix in (".html", ".txt") and path.is_relative_to(TEMPLATES):
            yield path


def python_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if "locale" not in p.parts)
        elif path.suffix == ".py":
            yield path


Message = tuple[str, str | None, str | None]  # (msgid, msgid_plural, msgctxt)


def _message(message: object, context: str | None) -> Message | None:
    if isinstance(message, str):
        return (message, None, context)
    if isinstance(message, tuple | list) and message and isinstance(message[0], str):
        return (message[0], message[1] if len(message) > 1 else None, context)
    return None  # a dynamic message (e.g. `_(variable)`): its words are marked where they are defined


def marked_messages(paths: Iterable[Path]) -> dict[Message, list[str]]:
    """Every marked message (and the places that use it) in templates and Python files."""
    paths = list(paths)
    found: dict[Message, list[str]] = {}

    def add(message: Message | None, where: str) -> None:
        if message is not None and message[0]:
            found.setdefault(message, []).append(where)

    for path in template_files(paths):
        where = str(path.relative_to(PROJECT_ROOT))
        with path.open("rb") as handle:
            for lineno, message, _comments, context in extract(babel_extract, handle, keywords=JINJA_KEYWORDS,
                                                                options=JINJA_OPTIONS):
                add(_message(message, context), f"{where}:{lineno}")
        text = path.read_text(encoding="utf-8")
        for match in _PLURALIZE.finditer(text):
            singular = match.group(1)
            plural = match.group(2) or singular + "s"
            add((f"%(num)s {singular}", f"%(num)s {plural}", None), f"{where}:{text.count(chr(10), 0, match.start()) + 1}")
    for path in python_files(paths):
        with path.open("rb") as handle:
            for lineno, message, _comments, context in extract("python", handle, keywords=PY_KEYWORDS):
                add(_message(message, context), f"{path.relative_to(PROJECT_ROOT)}:{lineno}")
    return found


def missing_translations(paths: Iterable[Path], locale: str = "sv") -> dict[Message, list[str]]:
    catalog = i18n.load_catalog(locale)
    missing = {}
    for (msgid, plural, context), where in marked_messages(paths).items():
        entry = catalog.get(msgid, context)
        string = entry.string if entry is not None else None
        if plural is not None:
            ok = isinstance(string, tuple | list) and all(string) and entry.id[1] == plural
        else:
            ok = isinstance(string, str) and bool(string)
        if not ok:
            missing[(msgid, plural, context)] = where
    return missing


def _po_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def po_stub(missing: dict[Message, list[str]]) -> str:
    out = []
    for (msgid, plural, context), where in missing.items():
        out.append("#: " + " ".join(where[:3]))
        if context:
            out.append(f"msgctxt {_po_quote(context)}")
        out.append(f"msgid {_po_quote(msgid)}")
        if plural is None:
            out.append('msgstr ""')
        else:
            out.append(f"msgid_plural {_po_quote(plural)}")
            out.append('msgstr[0] ""')
            out.append('msgstr[1] ""')
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or [TEMPLATES, APP]
    leftovers = 0
    for path in template_files(paths):
        for line, text in template_leftovers(path):
            print(f"UNMARKED {path.relative_to(PROJECT_ROOT)}:{line}: {text}")
            leftovers += 1
    for path in python_files(paths):
        for line, text in hidden_in_fstrings(path):
            print(f"UNEXTRACTED {path.relative_to(PROJECT_ROOT)}:{line}: {text}")
            leftovers += 1
    missing = missing_translations(paths)
    if missing:
        print("\n# Missing Swedish translations (.po stub):\n")
        print(po_stub(missing))
    print(f"# {leftovers} unmarked text(s), {len(missing)} untranslated message(s)", file=sys.stderr)
    return 1 if leftovers or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
