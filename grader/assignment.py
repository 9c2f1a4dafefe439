"""Finds and loads assignments: the kit's own, and a course's folders given beside them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader import kitpaths
from grader.assignment_rules import COMMON_TAGS, Files, validate
from grader.contract import Message, join, msg, verbatim
from grader.models import Assignment, Text

ASSIGNMENTS = kitpaths.ASSIGNMENTS
# A course's own assignment folders, os.pathsep-separated, as `--assignments DIR` gives them.
ENV_VAR = "SOCKETGRADE_ASSIGNMENTS"

__all__ = [
    "ASSIGNMENTS",
    "COMMON_TAGS",
    "ENV_VAR",
    "HASHED_FILES",
    "AssignmentError",
    "CourseFolder",
    "Installed",
    "assignment_hash",
    "available",
    "course_folders",
    "files_hash",
    "installed",
    "load_assignment",
    "load_folder",
]


class AssignmentError(Exception):
    """The kit's (or the course's) configuration is wrong: an unknown assignment, or one whose
    files break the rules. `messages` holds one sentence per problem, naming file and key, and
    `problems` the same in English; str() is the English, `sentence` the Message to translate."""

    def __init__(self, message: Message, problems: Sequence[Message] = ()):
        self.messages = tuple(problems)
        self.problems = tuple(str(p) for p in self.messages)
        self.sentence = join([message, *(join(["  - ", p], "") for p in self.messages)], "\n")
        # One argument, a Message: the terminal translates it, and str() renders the English.
        super().__init__(self.sentence)

    def __str__(self) -> str:
        return str(self.sentence)


@dataclass(frozen=True)
class CourseFolder:
    """A folder of a course's own assignments, and where it was given (for the sentences)."""

    path: Path
    given: str  # as the user wrote it
    source: str  # "--assignments" or the environment variable's name


@dataclass(frozen=True)
class Installed:
    """One assignment as found: valid (`assignment` set) or not (`problems` say why)."""

    name: str
    folder: Path
    course: CourseFolder | None  # None: the kit's own
    assignment: Assignment | None
    tags: Mapping[str, Text] = field(default_factory=dict)  # meaning of each tag it uses
    messages: tuple[Message, ...] = ()  # one sentence per problem, to be translated
    hides: tuple[Path, ...] = ()  # folders of the same name it takes over from

    @property
    def problems(self) -> tuple[str, ...]:
        """The problems in English."""
        return tuple(str(m) for m in self.messages)

    @property
    def valid(self) -> bool:
        return self.assignment is not None

    @property
    def origin(self) -> str:
        return str(self.origin_message)

    @property
    def origin_message(self) -> Message:
        """Where it was found: the kit, or the option or variable that named its folder."""
        if self.course is None:
            return msg("the kit")
        return verbatim(f"{self.course.source} {self.course.given}")


def _shown(path: Path, base: Path | None = None) -> str:
    """A path as a problem sentence names it: relative to `base` (the kit's folders are named
    from the folder holding assignments/), else to the current folder when it lies below
    it, else in full."""
    for start in ([base] if base is not None else []) + [Path.cwd()]:
        if path.is_relative_to(start):
            return path.relative_to(start).as_posix()
    return str(path)


# The files that define an assignment's verdicts: its hash changes when either does.
HASHED_FILES = ("assignment.toml", "checks.py")


def files_hash(files: dict[str, bytes]) -> str:
    """SHA-256 (hex) over files given as name -> bytes, in name order; each name and length
    is hashed before its bytes, so moving bytes from one file to the next changes it."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def assignment_hash(folder: Path) -> str:
    """The assignment's hash: assignment.toml and checks.py (those present) of `folder`."""
    return files_hash(
        {name: (folder / name).read_bytes() for name in HASHED_FILES if (folder / name).is_file()}
    )


def load_folder(
    folder: Path,
    course: CourseFolder | None = None,
    hides: Sequence[Path] = (),
    root: Path | None = None,
) -> Installed:
    """Validates one assignment folder; never raises for what is in its files. `root` is the
    kit's assignments folder when the folder is one of the kit's."""
    folder = Path(os.path.abspath(folder))
    if root is None and course is None and folder.is_relative_to(ASSIGNMENTS):
        root = ASSIGNMENTS
    base = root.parent if root is not None else None
    files = Files(
        folder, _shown(folder / "assignment.toml", base), _shown(folder / "checks.py", base)
    )
    assignment, tags, problems = validate(files, folder.name)
    if assignment is not None:
        assignment = replace(assignment, digest=assignment_hash(folder))
    return Installed(folder.name, folder, course, assignment, tags, tuple(problems), tuple(hides))


def course_folders(given: Iterable[str] = (), env: str | None = None) -> list[CourseFolder]:
    """The course folders from the command line, then from the environment variable (its
    value given as `env`; empty parts are skipped). Relative paths are taken from the current
    folder now: the harness later runs in a folder of its own."""
    wanted = [(g, "--assignments") for g in given]
    wanted += [(g, ENV_VAR) for g in (env or "").split(os.pathsep) if g.strip()]
    folders = []
    for text, source in wanted:
        path = Path(os.path.abspath(os.path.expanduser(text)))
        if not path.is_dir():
            raise AssignmentError(
                msg(
                    "the assignments folder {path} (from {source}) does not exist",
                    path=repr(text),
                    source=source,
                )
                if not path.exists()
                else msg(
                    "the assignments folder {path} (from {source}) is not a folder",
                    path=repr(text),
                    source=source,
                )
            )
        folders.append(CourseFolder(path, text, source))
    return folders


def _assignment_folders(course: CourseFolder) -> list[Path]:
    """DIR is one assignment folder (it holds assignment.toml) or a folder of them."""
    if (course.path / "assignment.toml").is_file():
        return [course.path]
    try:
        found = sorted(p for p in course.path.iterdir() if (p / "assignment.toml").is_file())
    except OSError as exc:
        raise AssignmentError(
            msg(
                "the assignments folder {path} (from {source}) cannot be read: {error}",
                path=repr(course.given),
                source=course.source,
                error=str(exc.strerror or exc),
            )
        ) from exc
    if not found:
        raise AssignmentError(
            msg(
                "the assignments folder {path} (from {source}) holds no assignment: neither "
                "it nor any folder in it has an assignment.toml",
                path=repr(course.given),
                source=course.source,
            )
        )
    return found


def _kit_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "assignment.toml").is_file())


Found = dict[str, tuple[Path, CourseFolder | None, list[Path]]]


def _found(root: Path, folders: Sequence[CourseFolder]) -> Found:
    """name -> (folder, its course folder or None, folders it hides). A course's folder takes
    over the kit's of the same name; between two course folders, the one given first wins."""
    found: Found = {}
    for course in folders:
        for folder in _assignment_folders(course):
            if folder.name in found and found[folder.name][0] == folder:
                continue  # the same folder, given twice (itself and its parent, say)
            if folder.name in found:
                found[folder.name][2].append(folder)
            else:
                found[folder.name] = (folder, course, [])
    for folder in _kit_folders(root):
        if folder.name in found and found[folder.name][0] == folder:
            continue
        if folder.name in found:
            found[folder.name][2].append(folder)
        else:
            found[folder.name] = (folder, None, [])
    return found


def installed(folders: Sequence[CourseFolder] = (), root: Path = ASSIGNMENTS) -> list[Installed]:
    """Every assignment that can be asked for, valid or not, by name."""
    return [
        load_folder(folder, course, hides, None if course else root)
        for _, (folder, course, hides) in sorted(_found(root, folders).items())
    ]


def available(folders: Sequence[CourseFolder] = (), root: Path = ASSIGNMENTS) -> list[str]:
    return sorted(_found(root, folders))


def load_assignment(
    name: str, root: Path = ASSIGNMENTS, folders: Sequence[CourseFolder] = ()
) -> Assignment:
    """The assignment called `name`, validated: AssignmentError lists every problem."""
    found = _found(root, folders)
    if name not in found:
        raise AssignmentError(
            msg(
                "unknown assignment {name}: choose one of {names}",
                name=repr(name),
                names=", ".join(sorted(found)) if found else msg("(none installed)"),
            )
        )
    folder, course, hides = found[name]
    item = load_folder(folder, course, hides, None if course else root)
    if item.assignment is None:
        base = root.parent if course is None else None
        count = len(item.messages)
        raise AssignmentError(
            msg(
                "the assignment {name} ({folder}, from {origin}) cannot be used: {count} "
                "problem in its files, a configuration fault and not any submission's",
                name=repr(name),
                folder=_shown(folder, base),
                origin=item.origin_message,
                count=count,
            )
            if count == 1
            else msg(
                "the assignment {name} ({folder}, from {origin}) cannot be used: {count} "
                "problems in its files, a configuration fault and not any submission's",
                name=repr(name),
                folder=_shown(folder, base),
                origin=item.origin_message,
                count=count,
            ),
            item.messages,
        )
    return item.assignment
