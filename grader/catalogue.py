"""The kit's message catalogues kept in step with its sources (Babel's extraction).

Every sentence a student or TA reads is a msg("...") in the kit's Python sources or a
_("...") / {% trans %} in its Jinja templates. `python -m grader.catalogue` extracts them all,
adds the new ones (untranslated) to each language's catalogue and marks the gone ones
obsolete; `--check` changes nothing and exits 1 when a sentence lacks its translation.
tests/test_catalogue.py runs the same check.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import string
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from grader.i18n import DOMAIN, LANGS, catalogue_path

PACKAGE = Path(__file__).resolve().parent
KEYWORDS = {"msg": None, "_": None, "gettext": None}
METHODS = [
    ("**/_kit/**", "ignore"),
    ("**.py", "python"),
    ("templates/**.html", "jinja2.ext:babel_extract"),
]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
TRANSLATED = tuple(lang for lang in LANGS if lang not in ("en", "both"))


def extracted() -> dict[str, list[str]]:
    """msgid → where it is used (file:line), over the whole package."""
    found: dict[str, list[str]] = {}
    # Babel warns on stderr of every f-string among a call's other arguments (msg("client
    # {name}", name=f"C{i}")), which is fine: only the first argument is the message.
    with contextlib.redirect_stderr(io.StringIO()):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(PACKAGE), METHODS, OPTIONS, KEYWORDS, strip_comment_tags=True
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def fields(template: str) -> list[tuple[str, str]]:
    """The (name, format spec) of each placeholder, in order of first use, sorted."""
    out = {
        (name, spec or "")
        for _, name, spec, _conv in string.Formatter().parse(template)
        if name is not None
    }
    return sorted(out)


def problems(lang: str) -> Iterator[str]:
    """Each sentence of the sources that `lang`'s catalogue does not translate faithfully."""
    with catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    for msgid, places in sorted(extracted().items()):
        entry = catalog.get(msgid)
        where = places[0]
        if entry is None or not entry.string:
            yield f"{where}: no {lang} translation of {msgid!r}"
        elif entry.fuzzy:
            yield f"{where}: the {lang} translation of {msgid!r} is marked fuzzy"
        else:
            try:
                ok = fields(msgid) == fields(str(entry.string))
            except ValueError as exc:
                yield f"{where}: the {lang} translation of {msgid!r} is not a template: {exc}"
                continue
            if not ok:
                yield (
                    f"{where}: the {lang} translation of {msgid!r} names other values "
                    f"({fields(str(entry.string))}) than the English ({fields(msgid)})"
                )


def update(lang: str) -> tuple[int, int]:
    """Add the new sentences to `lang`'s catalogue, mark the gone ones obsolete."""
    path = catalogue_path(lang)
    if path.exists():
        with path.open("rb") as f:
            catalog = read_po(f, locale=lang)
    else:
        catalog = Catalog(locale=lang, domain=DOMAIN, project="socketgrade")
    found = extracted()
    added = 0
    for msgid in found:
        if msgid not in catalog:
            catalog.add(msgid, "")
            added += 1
    gone = [m.id for m in catalog if isinstance(m.id, str) and m.id and m.id not in found]
    for msgid in gone:
        entry = catalog[msgid]
        if entry is not None:
            catalog.obsolete[msgid] = entry
        del catalog[msgid]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=100, no_location=True, omit_header=False, sort_output=False)
    return added, len(gone)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.catalogue", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report what is missing")
    args = parser.parse_args(argv)
    status = 0
    for lang in TRANSLATED:
        if not args.check:
            added, gone = update(lang)
            print(f"{catalogue_path(lang)}: {added} new, {gone} gone")
        missing = list(problems(lang))
        for line in missing:
            print(line)
        status = status or (1 if missing else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
