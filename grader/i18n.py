"""The kit's languages: which one to speak, and its message catalogue.

English is the language the sentences are written in (their message ids); each other language
has one gettext catalogue, grader/locale/<lang>/LC_MESSAGES/socketgrade.po, read with Babel.
A report, the index and the terminal speak `en`, `zh`, or `both` (Chinese, then English).
An assignment's own texts (titles, hints) are bilingual in its assignment.toml.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from babel.messages.pofile import read_po

from grader.contract.message import Message, Value, as_message

LANGS = ("zh", "en", "both")
DOMAIN = "socketgrade"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> Mapping[str, str]:
    """msgid → translation for `lang` ({} for English); fuzzy and empty entries are left out,
    so that such a sentence shows in English rather than wrong."""
    if lang == "en":
        return {}
    with catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    return {
        str(m.id): str(m.string)
        for m in catalog
        if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
    }


def default_lang(environ: Mapping[str, str] | None = None) -> str:
    """The language the locale asks for (LC_ALL, then LC_MESSAGES, then LANG, as gettext
    reads them): zh or en; `both` when the locale says neither (C, POSIX, unset, other)."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            code = value.split(".")[0].split("_")[0].lower()
            return code if code in ("zh", "en") else "both"
    return "both"


@dataclass(frozen=True)
class Speaker:
    """Renders the kit's sentences in one choice of language (`zh`, `en` or `both`)."""

    lang: str = "both"

    def __post_init__(self) -> None:
        if self.lang not in LANGS:
            raise ValueError(f"unknown language {self.lang!r}: choose one of {', '.join(LANGS)}")

    @property
    def langs(self) -> tuple[str, ...]:
        """The languages shown, first the main one."""
        return ("zh", "en") if self.lang == "both" else (self.lang,)

    def gettext(self, msgid: str, lang: str | None = None) -> str:
        table = translations(lang or self.langs[0])
        return table.get(msgid, msgid)

    def render(self, value: Value | None, lang: str | None = None) -> str:
        """One language's sentence: the main one unless `lang` is given."""
        chosen = lang or self.langs[0]
        return as_message(value).render(lambda m: self.gettext(m, chosen))

    def renders(self, value: Value | None) -> list[tuple[str, str]]:
        """(lang, sentence) in each language shown; once when both read the same (a name)."""
        out: list[tuple[str, str]] = []
        for lang in self.langs:
            text = self.render(value, lang)
            if not any(text == seen for _, seen in out):
                out.append((lang, text))
        return out

    def text(self, value: Value | None, joiner: str = "\n") -> str:
        """Every language's sentence, joined (the terminal, Markdown, CSV)."""
        return joiner.join(text for _, text in self.renders(value))

    def pick(self, en: str, zh: str, joiner: str = "\n") -> str:
        """An assignment's own bilingual text (assignment.toml) in the languages shown."""
        texts = {"en": en, "zh": zh or en}
        out: list[str] = []
        for lang in self.langs:
            if texts[lang] and texts[lang] not in out:
                out.append(texts[lang])
        return joiner.join(out)


def speaker(lang: str | None = None) -> Speaker:
    """The Speaker for `lang`, or for the locale when None."""
    return Speaker(lang or default_lang())


__all__ = ["LANGS", "Message", "Speaker", "default_lang", "speaker", "translations"]
