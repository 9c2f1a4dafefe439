"""What every platform export holds: the wheels, their unpacker, the grading settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from grader import __version__, kitpaths
from grader.models import Assignment
from grader.platforms import bundle

TEMPLATES = Path(__file__).with_name("templates")
CONFIG = "socketgrade.json"  # the grading settings, read by grader.platforms.run
UNPACKER = "unpack_wheels.py"
# A course's own assignment travels in the export without what only the kit's tests need.
NOT_EXPORTED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "reference", "fixtures", "holdout", "examples"
)


def template(name: str, **values: str) -> str:
    """A template of this package with each @KEY@ replaced: the scripts are bash and
    Dockerfiles, whose own $ and {} must stay as they are."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", value)
    return text


def write_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")
    path.chmod(0o755)


def is_the_kits(assignment: Assignment) -> bool:
    """True for an assignment the kit's wheel carries; False for a course's own folder."""
    return assignment.folder.resolve().is_relative_to(kitpaths.ASSIGNMENTS.resolve())


def stage(
    dest: Path,
    assignment: Assignment,
    lang: str,
    wall_clock: float,
    wheels: Path | None = None,
) -> list[bundle.Wheel]:
    """Writes into `dest` the wheels (wheels/), their unpacker, the grading settings and, for
    a course's own assignment, its folder (assignments/<name>/)."""
    dest.mkdir(parents=True, exist_ok=True)
    found = bundle.collect(dest / "wheels", wheels)
    shutil.copyfile(TEMPLATES / UNPACKER, dest / UNPACKER)
    settings = {
        "assignment": assignment.name,
        "lang": lang,
        "wall_clock": wall_clock,
        "kit": __version__,
        "assignments": [],
    }
    if not is_the_kits(assignment):
        shutil.copytree(
            assignment.folder, dest / "assignments" / assignment.name, ignore=NOT_EXPORTED
        )
        settings["assignments"] = ["assignments"]
    (dest / CONFIG).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return found
