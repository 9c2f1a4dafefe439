"""An assignment folder's files as the rules read them: assignment.toml parsed, and the test_*
functions of checks.py found with `ast`, each problem one sentence (a Message)."""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.contract import Message, msg


@dataclass(frozen=True)
class Files:
    """An assignment's two files, and how a problem sentence names them."""

    folder: Path
    meta_shown: str
    checks_shown: str

    @property
    def meta(self) -> Path:
        return self.folder / "assignment.toml"

    @property
    def checks(self) -> Path:
        return self.folder / "checks.py"


def check_functions(files: Files) -> tuple[dict[str, int] | None, list[Message]]:
    """The test_* functions pytest would collect from checks.py (module level, and in Test*
    classes), each with its line, read with `ast`: checks.py is never imported on the host,
    where it could not even import the harness's modules it relies on. None when checks.py
    cannot be read at all."""
    where = f"{files.checks_shown}: "
    try:
        source = files.checks.read_bytes()
    except FileNotFoundError:
        return None, [
            msg("{where}is missing (each check is a function test_<id> in it)", where=where)
        ]
    except OSError as exc:
        return None, [_unreadable(where, exc)]
    try:
        tree = ast.parse(source, filename=str(files.checks))
    except SyntaxError as exc:
        if exc.lineno:
            where = f"{where}line {exc.lineno}: "
        return None, [msg("{where}is not valid Python ({error})", where=where, error=str(exc.msg))]
    except ValueError as exc:  # null bytes in the source
        return None, [msg("{where}is not valid Python ({error})", where=where, error=str(exc))]
    found: dict[str, int] = {}
    problems: list[Message] = []
    bodies = [tree.body] + [
        node.body
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test")
    ]
    for body in bodies:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
                "test_"
            ):
                if node.name in found:
                    problems.append(
                        msg(
                            "{where}line {line}: {name} is defined again (line {first}), and "
                            "only one of them runs",
                            where=where,
                            line=node.lineno,
                            name=node.name,
                            first=found[node.name],
                        )
                    )
                else:
                    found[node.name] = node.lineno
    return found, problems


def pairing_problems(data: dict, files: Files, functions: dict[str, int]) -> list[Message]:
    """Every check has its test_<id>, and every test_* function has its check: a function
    without one would run and score nothing; a check without one would be a grader fault for
    every student."""
    checks = data.get("checks")
    if not isinstance(checks, list):
        return []
    ids = {
        raw["id"]: index
        for index, raw in enumerate(checks)
        if isinstance(raw, dict) and isinstance(raw.get("id"), str)
    }
    problems = [
        msg(
            "{meta}: checks[{index}] ({id}): {checks} has no function test_{id}",
            meta=files.meta_shown,
            index=index,
            id=ident,
            checks=files.checks_shown,
        )
        for ident, index in ids.items()
        if f"test_{ident}" not in functions
    ]
    problems += [
        msg(
            '{checks}: line {line}: {name} has no check: add a [[checks]] table with id = "{id}" '
            "to {meta}, or rename the function",
            checks=files.checks_shown,
            line=line,
            name=fn,
            id=fn[5:],
            meta=files.meta_shown,
        )
        for fn, line in functions.items()
        if fn[5:] not in ids
    ]
    return problems


def _unreadable(where: str, exc: OSError) -> Message:
    return msg("{where}cannot be read ({error})", where=where, error=str(exc.strerror or exc))


def read_meta(files: Files) -> tuple[dict | None, list[Message]]:
    where = f"{files.meta_shown}: "
    try:
        text = files.meta.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None, [msg("{where}is missing", where=where)]
    except OSError as exc:
        return None, [_unreadable(where, exc)]
    except UnicodeDecodeError as exc:
        return None, [msg("{where}is not UTF-8 text (byte {byte})", where=where, byte=exc.start)]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [msg("{where}is not valid TOML ({error})", where=where, error=str(exc))]
