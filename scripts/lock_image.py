"""Writes sandbox/requirements.txt: the exact closure of pyproject's `harness` extra.

The grading image installs sandbox/requirements.txt with `pip install --no-deps`, so that file
must name every package the harness needs, each at one exact version. pyproject.toml is the
source: its `harness` extra lists the harness's direct needs as ranges. This script walks their
dependencies through the metadata of the packages installed beside it (importlib.metadata: no
network, no resolver), evaluates markers for the image's interpreter, and writes the pins.
Run it with the interpreter of .venv, which scripts/setup.sh installs held to these very pins.

    .venv/bin/python scripts/lock_image.py            rewrite the file (existing pins are kept
                                                      while they satisfy every range)
    .venv/bin/python scripts/lock_image.py --upgrade  pin what is installed now
    .venv/bin/python scripts/lock_image.py --check    exit 1 if the file is not what it would write

Changing the file's bytes changes the image's source hash: the next Docker run asks for
`grade sandbox build`. tests/test_dependencies.py fails when the file and pyproject disagree.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import cast

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS = ROOT / "sandbox" / "requirements.txt"
GROUP = "harness"

# The interpreter the image's libraries are installed for: the image build runs pip with
# `--python-version 3.11 --platform manylinux..._{arch}`, and both bases (bookworm's python3,
# python:3.x-slim) are CPython on Linux. Markers are evaluated for it, not for this machine.
IMAGE_ENV: dict[str, str] = {
    **cast(dict[str, str], default_environment()),
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
}

HEADER = """\
# The grading image's Python libraries: the exact closure of the `harness` extra in
# pyproject.toml, for CPython 3.11 on Linux, installed with `pip install --no-deps`.
# Written by `python scripts/lock_image.py` from the installed packages' metadata (no network):
# change the ranges in pyproject.toml and run it, never edit this file by hand.
# Changing this file makes the image stale (`grade sandbox build`).
"""


class LockError(Exception):
    """The installed packages cannot give a closure that satisfies pyproject's ranges."""


@dataclass
class Node:
    """One package of the closure: the ranges asked of it, each with who asked."""

    name: str
    asked: list[tuple[Requirement, str]] = field(default_factory=list)

    @property
    def via(self) -> list[str]:
        return sorted({parent for _, parent in self.asked})


def marker_applies(req: Requirement, extras: frozenset[str] = frozenset()) -> bool:
    """True when `req` is needed in the image (with `extras` of its dependent requested)."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**IMAGE_ENV, "extra": extra}) for extra in extras | {""})


def harness_group(pyproject: Path = PYPROJECT) -> list[Requirement]:
    """The harness's direct needs, as pyproject.toml states them."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    try:
        lines = data["project"]["optional-dependencies"][GROUP]
    except KeyError as exc:
        raise LockError(f"{pyproject} has no [project.optional-dependencies] {GROUP}") from exc
    return [Requirement(line) for line in lines]


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """`name==version` lines of a requirements file (comments dropped), by canonical name."""
    pins: dict[str, str] = {}
    if not path.exists():
        return pins
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            raise LockError(f"{path}: {raw!r} is not an exact pin (name==version)")
        pins[canonicalize_name(req.name)] = spec[0].version
    return pins


def closure(direct: list[Requirement]) -> dict[str, Node]:
    """Every package `direct` needs in the image, from the installed metadata."""
    nodes: dict[str, Node] = {}
    # A package is walked once per set of extras asked of it: `x[y]` may need more than `x`.
    walked: set[tuple[str, frozenset[str]]] = set()
    todo = [(req, f"socketgrade[{GROUP}]") for req in direct]
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        nodes.setdefault(name, Node(name)).asked.append((req, parent))
        extras = frozenset(req.extras)
        if (name, extras) in walked:
            continue
        walked.add((name, extras))
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError as exc:
            raise LockError(
                f"{name} (needed by {parent}) is not installed here: run "
                f"`bash scripts/setup.sh` and use its .venv/bin/python"
            ) from exc
        for line in requires:
            sub = Requirement(line)
            if marker_applies(sub, extras):
                todo.append((sub, name))
    return nodes


def satisfies(version: str, node: Node) -> bool:
    return all(req.specifier.contains(Version(version), prereleases=True) for req, _ in node.asked)


def choose(nodes: dict[str, Node], old: dict[str, str], upgrade: bool) -> dict[str, str]:
    """One version per package: the old pin while it still fits, else the installed one."""
    pins: dict[str, str] = {}
    for name, node in nodes.items():
        installed = metadata.version(name)
        keep = old.get(name)
        version = keep if keep and not upgrade and satisfies(keep, node) else installed
        if not satisfies(version, node):
            asked = ", ".join(f"{req} (by {parent})" for req, parent in node.asked)
            raise LockError(
                f"installed {name} {installed} does not satisfy {asked}: "
                f"install a version that does, then run this again"
            )
        if version != installed:
            # The closure was read from the installed version's metadata; scripts/setup.sh
            # installs the pinned one, so this happens only in an environment made otherwise.
            print(
                f"note: {name} keeps its pin {version}; {installed} is installed here",
                file=sys.stderr,
            )
        pins[name] = version
    return pins


def render(nodes: dict[str, Node], pins: dict[str, str]) -> str:
    width = max(len(f"{name}=={version}") for name, version in pins.items())
    lines = [HEADER]
    for name in sorted(pins):
        pin = f"{name}=={pins[name]}"
        via = ", ".join(nodes[name].via)
        lines.append(f"{pin:<{width}}  # via {via}\n")
    return "".join(lines)


def lock(upgrade: bool = False, path: Path = REQUIREMENTS) -> str:
    """The text sandbox/requirements.txt should hold."""
    nodes = closure(harness_group())
    return render(nodes, choose(nodes, read_pins(path), upgrade))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upgrade",
        action="store_true",
        help="pin the installed versions, not the ones already in the file",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from what would be written",
    )
    ns = parser.parse_args(argv)
    try:
        text = lock(upgrade=ns.upgrade)
    except LockError as exc:
        print(f"lock_image: {exc}", file=sys.stderr)
        return 2
    current = REQUIREMENTS.read_text(encoding="utf-8") if REQUIREMENTS.exists() else ""
    if ns.check:
        if text != current:
            print(
                f"{REQUIREMENTS.relative_to(ROOT)} is out of date: run "
                f"`python scripts/lock_image.py`",
                file=sys.stderr,
            )
            return 1
        return 0
    if text != current:
        REQUIREMENTS.write_text(text, encoding="utf-8")
        print(
            f"wrote {REQUIREMENTS.relative_to(ROOT)}: the image is now stale "
            f"(`grade sandbox build`)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
