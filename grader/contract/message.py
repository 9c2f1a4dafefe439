"""A sentence a student or TA reads, as data: its English template (the message id of the
kit's catalogues, grader/locale) and the values it names. The harness writes sentences this
way; the host translates them (grader.i18n), so that one grading can be read, and re-rendered
later, in any language.

    fail(msg("client {name} got {got} back instead of {sent}", name="A", got=..., sent=...))

Placeholders are str.format fields. A format spec ({seconds:.2f}) belongs to the template, and
every translation keeps the same fields and specs, so that a measured value reads the same in
every language (tests/test_catalogue.py holds them to it). A value is a number, a verbatim
string (a name, a line of code, bytes shown as text: never translated), or another Message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Union

Value = Union[str, int, float, "Message"]
Gettext = Callable[[str], str]


def _english(msgid: str) -> str:
    return msgid


@dataclass(frozen=True)
class Message:
    """A template and its values; or, when `msgid` is empty, its parts joined by `sep`."""

    msgid: str
    args: tuple[tuple[str, Value], ...] = ()
    parts: tuple[Value, ...] = ()
    sep: str = ""

    def render(self, gettext: Gettext = _english) -> str:
        """The sentence in the language of `gettext` (msgid → template); English by default."""
        if not self.msgid:
            sep = gettext(self.sep) if self.sep.strip() else self.sep
            return sep.join(str(_value(p, gettext)) for p in self.parts)
        values = {k: _value(v, gettext) for k, v in self.args}
        template = gettext(self.msgid)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError):
            # A broken translation must not lose the sentence: fall back to the English.
            return self.msgid.format(**values)

    def __str__(self) -> str:
        return self.render()

    def __bool__(self) -> bool:
        return bool(self.msgid or any(self.parts))

    def to_json(self) -> dict:
        if not self.msgid:
            return {"join": [_value_json(p) for p in self.parts], "sep": self.sep}
        return {"msgid": self.msgid, "args": {k: _value_json(v) for k, v in self.args}}

    @classmethod
    def from_json(cls, data: object) -> Message:
        """What to_json wrote; a plain string (an older report) is taken verbatim."""
        if isinstance(data, dict) and isinstance(data.get("msgid"), str) and data["msgid"]:
            args = data.get("args")
            return cls(
                data["msgid"],
                tuple((str(k), _value_from(v)) for k, v in args.items())
                if isinstance(args, dict)
                else (),
            )
        if isinstance(data, dict) and isinstance(data.get("join"), list):
            return cls(
                "", parts=tuple(_value_from(v) for v in data["join"]), sep=str(data.get("sep", ""))
            )
        return verbatim("" if data is None else str(data))


def msg(msgid: str, /, **args: Value) -> Message:
    """A translatable sentence. `msgid` must be a string literal: the catalogue test extracts
    every msg("...") of the kit's sources, and each needs its translation."""
    return Message(msgid, tuple(args.items()))


def verbatim(text: str) -> Message:
    """Text shown as it is in every language (a student's output, a name, a path)."""
    return Message("", parts=(text,)) if text else Message("")


def join(parts: Iterable[Value], sep: str = "; ") -> Message:
    """Sentences or values in a row; a separator with letters in it is translated too."""
    return Message("", parts=tuple(parts), sep=sep)


def as_message(value: Value | None) -> Message:
    """A Message as it is; anything else verbatim."""
    if isinstance(value, Message):
        return value
    return verbatim("" if value is None else str(value))


def _value(value: Value, gettext: Gettext) -> object:
    return value.render(gettext) if isinstance(value, Message) else value


def _value_json(value: Value) -> object:
    return value.to_json() if isinstance(value, Message) else value


def _value_from(data: object) -> Value:
    if isinstance(data, dict):
        return Message.from_json(data)
    if isinstance(data, (str, int, float)) and not isinstance(data, bool):
        return data
    return str(data)
