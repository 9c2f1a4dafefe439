"""The Jinja2 environment of the reports, one per language, and the filters its templates use."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from grader.contract.message import Message, msg
from grader.i18n import Speaker
from grader.models import Text

TEMPLATES = Path(__file__).resolve().parent / "templates"
SHORT_CHARS = 90  # the class table's "main reason" column: the start of the sentence


def short(text: str, limit: int = SHORT_CHARS) -> str:
    """The first line of a sentence, cut to `limit` characters (an ellipsis says so)."""
    line = text.split("\n", 1)[0]
    if len(line) <= limit and line == text:
        return text
    return line[: limit - 1].rstrip() + "…"


def num(value, digits: int = 2) -> str:
    """A number as people write it: 10, 8.7, 0.05 (no float noise, no exponent)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def size(value) -> Message:
    """A byte count for people: 18 bytes, 4.2 MB (4213748 bytes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return msg("{n} bytes", n=str(value))
    if value == 1:
        return msg("1 byte")
    if value < 10_000:
        return msg("{n} bytes", n=value)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return msg("{x} {unit} ({n} bytes)", x=num(value / scale, 1), unit=unit, n=value)
    return msg("{n} bytes", n=value)


def since(t) -> str:
    """A time in a check's timeline: +0.946 s after it started; blank when unknown."""
    return f"+{t:.3f} s" if isinstance(t, (int, float)) and math.isfinite(t) else ""


def _lines(text: str) -> Markup:
    """Escaped text whose line breaks stay lines (a reason with one line per scenario)."""
    parts = text.split("\n")
    if len(parts) == 1:
        return escape(text)
    return Markup("").join(Markup('<span class="line">{}</span>').format(p) for p in parts)


def _spans(speaker: Speaker, texts: list[tuple[str, Markup]]) -> Markup:
    """One sentence per language shown: alone in a one-language page; in `both`, Chinese
    first and the English after it, marked so that the page can set it apart."""
    if speaker.lang != "both":
        return Markup(" ").join(t for _, t in texts)
    return Markup(" ").join(
        Markup('<span lang="{}"{}>{}</span>').format(
            lang, Markup(' class="alt"') if lang == "en" else "", text
        )
        for lang, text in texts
    )


class Words:
    """The callables and filters of one language's environment."""

    def __init__(self, speaker: Speaker):
        self.speaker = speaker

    def _value(self, value, lang: str, html: bool):
        if isinstance(value, Message):
            text = self.speaker.render(value, lang)
            return _lines(text) if html else text
        if html and isinstance(value, str) and not isinstance(value, Markup):
            # A plain string is verbatim (a name, a path, a phrase not yet a Message): never
            # translated, and marked so for browsers and for the language checks.
            return Markup('<span translate="no">{}</span>').format(value)
        return value

    def _one(self, msgid: str, lang: str, kw: Mapping, html: bool) -> str:
        values = {k: self._value(v, lang, html) for k, v in kw.items()}
        template = self.speaker.gettext(msgid, lang)
        for candidate in (template, msgid):
            try:
                if html:
                    return Markup(escape(candidate)).format(**values)
                return candidate.format(**values)
            except (KeyError, IndexError, ValueError):
                # A broken translation must not lose the sentence: the English instead.
                continue
        return escape(msgid) if html else msgid

    def html(self, msgid: str, **kw) -> Markup:
        """_("...", name=value): the sentence as HTML in each language shown."""
        return _spans(
            self.speaker, [(lang, self._one(msgid, lang, kw, True)) for lang in self.speaker.langs]
        )

    def plain(self, msgid: str, **kw) -> str:
        """gettext("..."): plain text for attributes and the page title."""
        out: list[str] = []
        for lang in self.speaker.langs:
            text = self._one(msgid, lang, kw, False)
            if text not in out:
                out.append(text)
        return " / ".join(out)

    def say(self, value) -> Markup:
        """A Message (or a verbatim string) as HTML in each language shown."""
        if not isinstance(value, Message):
            return self._value("" if value is None else str(value), "en", True)
        return _spans(self.speaker, [(lang, _lines(t)) for lang, t in self.speaker.renders(value)])

    def say_short(self, value) -> Markup:
        """The start of a sentence, in each language shown (a table cell)."""
        if not isinstance(value, Message):
            return self._value(short("" if value is None else str(value)), "en", True)
        return _spans(self.speaker, [(lang, escape(short(t))) for lang, t in self.speaker.renders(value)])

    def say_text(self, value, joiner: str = " / ") -> str:
        if not isinstance(value, Message):
            return "" if value is None else str(value)
        return self.speaker.text(value, joiner)

    def pick(self, text: Text, block: bool = False) -> Markup:
        """An assignment's own bilingual text, in the languages shown."""
        found = {"en": text.en, "zh": text.zh or text.en}
        tag = "p" if block else "span"
        out: list[Markup] = []
        seen: list[str] = []
        for lang in self.speaker.langs:
            if not found[lang] or found[lang] in seen:
                continue
            seen.append(found[lang])
            alt = Markup(' class="alt"') if lang == "en" and self.speaker.lang == "both" else ""
            out.append(Markup("<{0} lang=\"{1}\"{2}>{3}</{0}>").format(tag, lang, alt, found[lang]))
        return Markup(" ").join(out)


@functools.cache
def environment(speaker: Speaker) -> Environment:
    """Everything is escaped on output: a report shows text the student's program chose (its
    output, its source, and the tracer's notes, which run inside the student's process)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    words = Words(speaker)
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=words.plain, ngettext=lambda s, p, n, **kw: words.plain(s if n == 1 else p, **kw)
    )
    # `_` gives HTML (both languages in `both`); `gettext` plain text, for attributes.
    env.globals["_"] = words.html
    env.globals["html_lang"] = "en" if speaker.lang == "en" else "zh"
    env.globals["lang"] = speaker.lang
    env.filters.update(
        num=num, size=size, since=since, say=words.say, say_text=words.say_text,
        say_short=words.say_short, pick=words.pick
    )
    return env
