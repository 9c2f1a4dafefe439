"""A graded SubmissionResult saved whole (OUT/<id>/result.json) and read back, for `grade report`.

results.json is Gradescope's shape, in one language, and loses most of a result; this file keeps
every record (sentences as Messages, so that they can be rendered again in any language). The
records are the frozen dataclasses of grader.models: each is written field by field from its
type hints, so that a field added to a model is saved without a change here, and a field an
older file lacks takes the model's default.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from pathlib import Path

from grader.contract import Message
from grader.export import write_atomically
from grader.models import SubmissionResult

SCHEMA = "socketgrade.result"
# Bumped when a saved file can no longer be read as the models are: a change that only adds
# fields with defaults keeps it.
VERSION = 1
RESULT_FILE = "result.json"


class SavedError(Exception):
    """A saved result that cannot be read back: which file, and what is wrong with it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _encode(value: object) -> object:
    if isinstance(value, Message):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


@functools.cache
def _hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls)


def _decode(hint: object, data: object, where: str) -> object:
    """`data` as the type `hint` names; ValueError (saying where) when it cannot be."""
    origin = typing.get_origin(hint)
    if hint is Message:
        return Message.from_json(data)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if data is None:
            return None
        if len(options) == 1:
            return _decode(options[0], data, where)
        return data  # a value of several plain types (a measurement): as it came
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint, data, where)
    if hint is Path:
        return Path(str(_plain(str, data, where)))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(data, list):
            raise ValueError(f"{where}: a list was expected")
        return tuple(_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(data))
    if hint is dict or origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: an object was expected")
        return dict(data)
    if hint in (str, bool):
        return _plain(hint, data, where)
    if hint in (int, float):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise ValueError(f"{where}: a number was expected")
        return data
    return data


def _plain(kind: type, data: object, where: str) -> object:
    if not isinstance(data, kind):
        raise ValueError(f"{where}: a {kind.__name__} was expected")
    return data


def _record(cls: type, data: object, where: str) -> object:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: an object was expected")
    hints = _hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            values[f.name] = _decode(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where}: {f.name} is missing")
    return cls(**values)


def to_json(result: SubmissionResult, self_check: bool = False) -> dict:
    """The whole result, versioned; `self_check`: a student's own `grade check` (its report
    has the self-check's banner and leaves out what is meant for TAs)."""
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "self_check": self_check,
        "result": _encode(result),
    }


def from_json(data: object) -> SubmissionResult:
    """What to_json wrote; ValueError saying what is wrong otherwise."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"not a saved {SCHEMA}")
    if data.get("version") != VERSION:
        raise ValueError(f"version {data.get('version')!r}, this kit reads version {VERSION}")
    result = _record(SubmissionResult, data.get("result"), "result")
    assert isinstance(result, SubmissionResult)
    return result


def write(result: SubmissionResult, path: Path, self_check: bool = False) -> None:
    """Saved atomically: a grading stopped half-way leaves the old file or the new one.
    Without indentation: json.dumps then takes its C encoder (a few milliseconds per hand-in
    in place of five times as many); `python -m json.tool` shows it indented."""
    text = json.dumps(to_json(result, self_check), ensure_ascii=False)
    write_atomically(path, text + "\n")


@dataclasses.dataclass(frozen=True)
class Saved:
    """A saved result and how it was graded."""

    result: SubmissionResult
    self_check: bool = False


def read_saved(path: Path) -> Saved:
    """The result saved at `path`; SavedError naming the file when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Saved(from_json(data), data.get("self_check") is True)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SavedError(path, str(exc)) from exc


def read(path: Path) -> SubmissionResult:
    return read_saved(path).result


def read_folder(out: Path) -> tuple[list[Saved], list[SavedError]]:
    """Every result saved under `out` (one folder per submission), by submission id, and the
    files that could not be read."""
    found, errors = [], []
    for path in sorted(out.glob(f"*/{RESULT_FILE}")):
        try:
            found.append(read_saved(path))
        except SavedError as exc:
            errors.append(exc)
    found.sort(key=lambda s: s.result.submission.id)
    return found, errors
