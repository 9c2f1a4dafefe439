"""The Jinja2 environment of the reports, one per language, and the filters its templates use."""

from __future__ import annotations

import functools
import math
import re
import string
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


_FORMATTER = string.Formatter()


@functools.lru_cache(maxsize=8192)
def _pieces(template: str) -> tuple[tuple[str, int | str | None, str], ...] | None:
    """A template's (literal text, field, format spec) pieces, its fields numbered as
    str.format numbers them; None where a field asks for more (a conversion, an attribute,
    an index, a nested spec, both kinds of numbering): Markup.format itself then."""
    out: list[tuple[str, int | str | None, str]] = []
    auto = 0
    numbered = False
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:  # Markup.format then raises where it meets it (or a field's error first)
        return None
    for literal, name, spec, conversion in parsed:
        key: int | str | None = None
        if name is not None:
            if conversion or (spec and "{" in spec):
                return None
            if name == "":
                key, auto = auto, auto + 1
            elif name.isascii() and name.isdigit():
                key, numbered = int(name), True
            elif name.isidentifier():
                key = name
            else:
                return None
        out.append((literal, key, spec or ""))
    return None if auto and numbered else tuple(out)


def html_format(template: str, *args, **kwargs) -> Markup:
    """Markup(template).format(*args, **kwargs), the same text and the same errors, without
    string.Formatter's walk of the template each time (a report formats thousands)."""
    pieces = _pieces(str(template))
    if pieces is None:
        return Markup(template).format(*args, **kwargs)
    out: list[str] = []
    for literal, key, spec in pieces:
        out.append(literal)
        if key is None:
            continue
        value = args[key] if isinstance(key, int) else kwargs[key]
        # As markupsafe's EscapeFormatter.format_field; its two commonest cases first.
        if type(value) is Markup:
            if spec:
                raise ValueError("Unsupported format specification for Markup.")
            out.append(value)
        elif type(value) is str:
            out.append(escape(format(value, spec) if spec else value))
        elif hasattr(value, "__html_format__"):
            out.append(escape(value.__html_format__(spec)))
        elif hasattr(value, "__html__"):
            if spec:
                raise ValueError(f"format specifier {spec} given to {type(value)}")
            out.append(escape(value.__html__()))
        else:
            out.append(escape(format(value, spec)))
    return Markup("".join(out))


def _lines(text: str) -> Markup:
    """Escaped text whose line breaks stay lines (a reason with one line per scenario)."""
    if "\n" not in text:
        return escape(text)
    return Markup("<br>").join(escape(p) for p in text.split("\n"))


def _verbatim(text: str) -> Markup:
    """Text never translated (a name, a path, code, the student's bytes), marked so for
    browsers and for the language checks."""
    return html_format('<span translate="no">{}</span>', _lines(text)) if text else Markup("")


# In a Chinese sentence, a run of Latin letters is an identifier, a syscall or a unit
# (`recv()`, `EVENT_WRITE`, `fd`, `MB`): marked untranslated. A {field}, an entity and a
# tag (the text is already escaped) are left alone.
_LATIN = re.compile(r"(\{[^{}]*\}|&#?\w+;|<[^>]*>)|([A-Za-z_][\w.]*(?:\(\))?)")


def _mark_latin(html: Markup) -> Markup:
    """Chinese text (already escaped) with its Latin runs marked `translate="no"`."""
    return Markup(
        _LATIN.sub(lambda m: m.group(1) or f'<span translate="no">{m.group(2)}</span>', str(html))
    )


def _is_verbatim(m: Message) -> bool:
    return not m.msgid and all(isinstance(p, str) for p in m.parts)


def _spans(speaker: Speaker, texts: list[tuple[str, Markup]]) -> Markup:
    """One sentence per language shown: alone in a one-language page; in `both`, Chinese
    first and the English after it, marked so that the page can set it apart."""
    if speaker.lang != "both":
        return Markup(" ").join(t for _, t in texts)
    return Markup(" ").join(
        html_format(
            '<span lang="{}"{}>{}</span>',
            lang,
            Markup(' class="alt"') if lang == "en" else "",
            text,
        )
        for lang, text in texts
    )


class Words:
    """The callables and filters of one language's environment."""

    def __init__(self, speaker: Speaker):
        self.speaker = speaker

    def _value(self, value, lang: str, html: bool):
        if isinstance(value, Message):
            return self.markup(value, lang) if html else self.speaker.render(value, lang)
        if html and isinstance(value, str) and not isinstance(value, Markup):
            # A plain string is verbatim (a name, a path, a phrase not yet a Message).
            return _verbatim(value)
        return value

    def markup(self, m: Message, lang: str) -> Markup:
        """A Message as HTML in one language: its verbatim values marked untranslated, its
        line breaks kept."""
        if _is_verbatim(m):
            return _verbatim("".join(str(p) for p in m.parts))
        if not m.msgid:
            sep = self.speaker.gettext(m.sep, lang) if m.sep.strip() else m.sep
            return _lines(sep).join(self._value(p, lang, True) for p in m.parts)
        done = self._one(m.msgid, lang, dict(m.args), True)
        # None: a value with a format spec of its own ({name:>8}); the plain sentence then.
        return _lines(self.speaker.render(m, lang)) if done is None else Markup(done)

    def _one(self, msgid: str, lang: str, kw: Mapping, html: bool) -> str | None:
        values = {k: self._value(v, lang, html) for k, v in kw.items()}
        template = self.speaker.gettext(msgid, lang)
        for candidate in (template, msgid):
            try:
                if html:
                    escaped = _lines(candidate)
                    if lang == "zh" and candidate is template:
                        escaped = _mark_latin(escaped)
                    return html_format(escaped, **values)
                return candidate.format(**values)
            except (KeyError, IndexError, ValueError, TypeError):
                # A broken translation must not lose the sentence: the English instead.
                continue
        return None

    def html(self, msgid: str, **kw) -> Markup:
        """_("...", name=value): the sentence as HTML in each language shown."""
        return _spans(
            self.speaker,
            [
                (lang, Markup(self._one(msgid, lang, kw, True) or escape(msgid)))
                for lang in self.speaker.langs
            ],
        )

    def plain(self, msgid: str, **kw) -> str:
        """gettext("..."): plain text for attributes and the page title."""
        out: list[str] = []
        for lang in self.speaker.langs:
            text = self._one(msgid, lang, kw, False) or msgid
            if text not in out:
                out.append(text)
        return " / ".join(out)

    def say(self, value) -> Markup:
        """A Message (or a verbatim string) as HTML in each language shown."""
        if not isinstance(value, Message):
            return self._value("" if value is None else str(value), "en", True)
        # Once when every language reads the same (a name, the student's output).
        langs = [lang for lang, _ in self.speaker.renders(value)]
        if len(langs) == 1 and _is_verbatim(value):
            return self.markup(value, langs[0])
        return _spans(self.speaker, [(lang, self.markup(value, lang)) for lang in langs])

    def say_first(self, value) -> Markup:
        """A Message as the verdict at the top of a report shows it: in `both`, the Chinese,
        with the English folded beneath it (a click, a tap or Enter away), so that every
        failed check fits the first screen; otherwise as `say`."""
        if self.speaker.lang != "both" or not isinstance(value, Message):
            return self.say(value)
        texts = dict((lang, self.markup(value, lang)) for lang, _ in self.speaker.renders(value))
        if "en" not in texts or "zh" not in texts:
            return self.say(value)
        return html_format(
            '<span lang="zh">{}</span> <details class="alt-fold" lang="en">'
            '<summary>English</summary><span class="alt">{}</span></details>',
            texts["zh"],
            texts["en"],
        )

    def say_short(self, value) -> Markup:
        """The start of a sentence, in each language shown (a table cell)."""
        if not isinstance(value, Message):
            return self._value(short("" if value is None else str(value)), "en", True)
        return _spans(
            self.speaker,
            [
                (lang, _mark_latin(escape(short(t))) if lang == "zh" else escape(short(t)))
                for lang, t in self.speaker.renders(value)
            ],
        )

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
            body = _mark_latin(escape(found[lang])) if lang == "zh" else escape(found[lang])
            out.append(html_format('<{0} lang="{1}"{2}>{3}</{0}>', tag, lang, alt, body))
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
        # The kit's templates do not change while it runs: no stat() of each template file
        # at every include (a report includes a few dozen).
        auto_reload=False,
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
        num=num,
        size=size,
        since=since,
        say=words.say,
        say_text=words.say_text,
        say_short=words.say_short,
        say_first=words.say_first,
        pick=words.pick,
    )
    return env
