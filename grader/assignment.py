"""Loads an assignment: metadata from assignment.toml, checks from checks.py beside it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from grader import kitpaths
from grader.models import VISIBILITIES, Assignment, CheckSpec, Text

ASSIGNMENTS = kitpaths.ASSIGNMENTS
TAGS = ("runs", "echo", "disconnect", "concurrency", "nonblocking", "unregister", "idle_cpu",
        "single_thread", "uses_epoll", "cleanup", "robustness", "connect_wait")


class AssignmentError(Exception):
    """The kit's configuration is wrong (unknown assignment, bad metadata)."""


def available() -> list[str]:
    return sorted(p.name for p in ASSIGNMENTS.iterdir() if (p / "assignment.toml").is_file())


def load_assignment(name: str, root: Path = ASSIGNMENTS) -> Assignment:
    folder = root / name
    meta = folder / "assignment.toml"
    if not meta.is_file():
        raise AssignmentError(f"unknown assignment {name!r}: choose one of "
                              f"{', '.join(available()) or '(none installed)'}")
    try:
        data = tomllib.loads(meta.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AssignmentError(f"{meta} is not valid TOML: {exc}") from exc
    checks = []
    for raw in data.get("checks", []):
        spec = CheckSpec(
            id=raw["id"], tags=tuple(raw.get("tags", [raw["id"]])),
            points=float(raw.get("points", 0)), visibility=raw.get("visibility", "visible"),
            title=Text.of(raw.get("title", raw["id"])), explain=Text.of(raw.get("explain")),
            hint=Text.of(raw.get("hint")))
        bad = [t for t in spec.tags if t not in TAGS]
        if bad or spec.visibility not in VISIBILITIES:
            raise AssignmentError(f"{meta}: check {spec.id!r} has an unknown tag or visibility "
                                  f"({bad or spec.visibility})")
        checks.append(spec)
    if not checks:
        raise AssignmentError(f"{meta} declares no checks")
    if not (folder / "checks.py").is_file():
        raise AssignmentError(f"{folder} has no checks.py")
    return Assignment(name=data.get("name", name), title=Text.of(data.get("title", name)),
                      entry=data.get("entry", "server.py"), kind=data.get("kind", "server"),
                      checks=tuple(checks), folder=folder)
