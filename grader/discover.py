"""Discover stage: a folder of hand-ins → one prepared Submission per student."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from grader.contract import Message, msg
from grader.models import NOTHING, FileHash, Submission

MAX_FILES = 200
MAX_BYTES = 8 * 1024 * 1024  # unpacked size of one submission
SKIP = {"__MACOSX", "__pycache__", ".DS_Store"}
RESERVED = {"grades.csv", "index.html"}  # names the output folder uses itself
# Folders a student's tools leave beside the code (version control, virtual environments,
# editors, caches): never part of a hand-in, and a venv alone is thousands of files.
TOOL_FOLDERS = {
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    ".idea",
    ".vscode",
    "node_modules",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    "__pycache__",
    "__MACOSX",
}


class DiscoverError(Exception):
    """The TA's input is unusable as a whole (not a folder, empty): one sentence, no grading."""


def printable(name: str) -> str:
    """A file name as text that can be written anywhere (bytes that are not UTF-8 become �)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _safe_id(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "submission"
    ident, n = base, 2
    while ident in taken:
        ident, n = f"{base}-{n}", n + 1
    taken.add(ident)
    return ident


def choose_entry(folder: Path, entry: str) -> tuple[str | None, Message, tuple[str, ...]]:
    """(entry, problem, files): `entry` if present, else the only .py file at the top."""
    files = tuple(
        sorted(
            printable(str(p.relative_to(folder)))
            for p in folder.rglob("*")
            if p.is_file() and not set(p.relative_to(folder).parts) & SKIP
        )
    )
    if (folder / entry).is_file():
        return entry, NOTHING, files
    top_py = [f for f in files if "/" not in f and f.endswith(".py")]
    if len(top_py) == 1:
        return top_py[0], NOTHING, files
    found = ", ".join(files[:20]) + (" …" if len(files) > 20 else "") if files else msg("no files")
    if top_py:
        return (
            None,
            msg(
                "several .py files and none of them is named {entry}; found: {found}",
                entry=entry,
                found=found,
            ),
            files,
        )
    return (
        None,
        msg("no .py file, and none is named {entry}; found: {found}", entry=entry, found=found),
        files,
    )


# Bytes read at a time while hashing: a hand-in's file is never held whole in memory.
HASH_CHUNK = 1 << 16


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of one file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(folder: Path, files: tuple[str, ...]) -> tuple[FileHash, ...]:
    """Size and SHA-256 of each of `files` (paths relative to `folder`, as choose_entry gives
    them); a file whose name is not valid UTF-8 is listed under its printable name. A link is
    not followed: it may point anywhere on this machine (the Docker sandbox skips links too)."""
    by_name = {
        printable(str(p.relative_to(folder))): p
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    out = []
    for name in files:
        path = by_name.get(name)
        if path is not None:
            out.append(FileHash(name, path.stat().st_size, sha256_file(path)))
    return tuple(out)


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` lies strictly inside `folder`, links resolved."""
    path, folder = path.resolve(), folder.resolve()
    return path != folder and path.is_relative_to(folder)


def tool_folders(folder: Path) -> frozenset[Path]:
    """The tool folders (TOOL_FOLDERS, or any virtual environment: a folder holding
    pyvenv.cfg) under `folder`, resolved; they are not entered."""
    found = set()
    for top, dirs, _ in os.walk(folder):
        keep = []
        for d in dirs:
            p = Path(top, d)
            if d in TOOL_FOLDERS or (p / "pyvenv.cfg").is_file():
                found.add(p.resolve())
            else:
                keep.append(d)
        dirs[:] = keep
    return frozenset(found)


def _measure(folder: Path, leave_out: frozenset[Path] = frozenset()) -> tuple[int, int]:
    """(files, bytes) under `folder`, links not followed, the `leave_out` folders (resolved
    paths inside `folder`, itself resolved) not entered."""
    count = size = 0
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if Path(top, d) not in leave_out]
        for name in names:
            p = os.path.join(top, name)
            if os.path.isfile(p) and not os.path.islink(p):
                count += 1
                size += os.path.getsize(p)
    return count, size


def _copy_without(source: Path, dest: Path, leave_out: frozenset[Path]) -> Message:
    """Copy `source` (resolved) to `dest` without the `leave_out` folders and without sockets
    or FIFOs, which cannot be copied (the harness leaves them out anyway). Links stay links,
    for the sandbox to leave out as it always does. Returns a problem sentence, or nothing."""

    def ignore(top: str, names: list[str]) -> list[str]:
        out = []
        for name in names:
            p = os.path.join(top, name)
            special = not os.path.islink(p) and not (os.path.isfile(p) or os.path.isdir(p))
            if special or Path(p) in leave_out:
                out.append(name)
        return out

    try:
        shutil.copytree(source, dest, symlinks=True, ignore=ignore)
    except (OSError, shutil.Error) as exc:
        return msg(
            "the folder {folder} could not be copied: {error}",
            folder=printable(str(source)),
            error=printable(str(exc)),
        )
    return NOTHING


def unpack_zip(path: Path, dest: Path) -> Message:
    """Unpack safely into dest: no absolute or '..' paths, no links, bounded size. Returns a
    problem sentence, or nothing when all is well."""
    name = printable(path.name)
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            if len(members) > MAX_FILES:
                return msg(
                    "{name} holds {count} entries (the limit is {limit})",
                    name=name,
                    count=len(members),
                    limit=MAX_FILES,
                )
            total = 0
            for info in members:
                member = PurePosixPath(info.filename.replace("\\", "/"))
                if (
                    member.is_absolute()
                    or ".." in member.parts
                    or re.match(r"^[A-Za-z]:", str(member))
                ):
                    return msg(
                        "{name} contains an unsafe path {path}; nothing was unpacked",
                        name=name,
                        path=repr(info.filename),
                    )
                if stat.S_ISLNK(info.external_attr >> 16):
                    return msg(
                        "{name} contains a symbolic link {path}; nothing was unpacked",
                        name=name,
                        path=repr(info.filename),
                    )
                total += info.file_size
            if total > MAX_BYTES:
                return msg(
                    "{name} would unpack to {mb:.1f} MB (the limit is {limit:.0f} MB); "
                    "nothing was unpacked",
                    name=name,
                    mb=total / 1e6,
                    limit=MAX_BYTES / 1e6,
                )
            dest.mkdir(parents=True, exist_ok=True)
            written = 0
            for info in members:
                member = PurePosixPath(info.filename.replace("\\", "/"))
                if set(member.parts) & SKIP:
                    continue
                target = dest.joinpath(*member.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                # Read with a cap: the declared size in a zip can lie (a zip bomb).
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(65536):
                        written += len(chunk)
                        if written > MAX_BYTES:
                            return msg(
                                "{name} unpacks to more than {limit:.0f} MB (its sizes lie); "
                                "unpacking stopped",
                                name=name,
                                limit=MAX_BYTES / 1e6,
                            )
                        out.write(chunk)
        # A zip of a single folder: the submission is that folder's content.
        children = [p for p in dest.iterdir() if p.name not in SKIP]
        if len(children) == 1 and children[0].is_dir():
            inner = children[0].rename(dest / ".unzipped-folder")
            for p in list(inner.iterdir()):
                shutil.move(str(p), dest / p.name)
            inner.rmdir()
    except zipfile.BadZipFile:
        return msg("{name} is not a valid zip file", name=name)
    except (
        OSError,
        RuntimeError,
        NotImplementedError,
        EOFError,
        shutil.Error,
        zipfile.LargeZipFile,
    ) as exc:
        return msg("{name} could not be unpacked: {error}", name=name, error=printable(str(exc)))
    return NOTHING


def prepare(
    path: Path, ident: str, entry: str, scratch: Path, leave_out: tuple[Path, ...] = ()
) -> Submission:
    """One hand-in → a Submission whose `folder` the sandbox can copy. `leave_out`: the kit's
    own folders (output, scratch), never part of a hand-in even when inside it."""
    if path.is_dir():
        inner = frozenset(p.resolve() for p in leave_out if _inside(p, path))
        inner |= tool_folders(path.resolve())
        real = path.resolve() if inner else path
        count, size = _measure(real, inner)
        if count > MAX_FILES or size > MAX_BYTES:
            return Submission(
                ident,
                path,
                None,
                None,
                msg(
                    "the folder holds {count} files, {mb:.1f} MB (limits: {files} files, "
                    "{limit:.0f} MB)",
                    count=count,
                    mb=size / 1e6,
                    files=MAX_FILES,
                    limit=MAX_BYTES / 1e6,
                ),
            )
        folder = path
        if inner:
            # `grade check .` puts its report inside the folder it checks: the sandbox gets a
            # copy without it, else copying the folder would copy the copy, without end.
            # A student's .git or venv is left out the same way.
            folder = scratch / ident
            problem = _copy_without(real, folder, inner)
            if problem:
                return Submission(ident, path, None, None, problem)
    elif path.suffix == ".py" and path.is_file():
        folder = scratch / ident
        folder.mkdir(parents=True)
        shutil.copyfile(path, folder / path.name)
    elif path.suffix.lower() == ".zip" and path.is_file():
        folder = scratch / ident
        problem = unpack_zip(path, folder)
        if problem:
            return Submission(ident, path, None, None, problem)
    else:
        return Submission(
            ident,
            path,
            None,
            None,
            msg("{name} is neither a folder, a .py file nor a .zip", name=printable(path.name)),
        )
    chosen, problem, files = choose_entry(folder, entry)
    # Hashed is what the sandbox is given: the hand-in itself, or the copy made of it.
    hashed = "as handed in" if folder == path else "prepared copy"
    return Submission(
        ident, path, folder, chosen, problem, files, file_hashes(folder, files), hashed
    )


def discover(
    root: str | os.PathLike, entry: str, scratch: Path, leave_out: tuple[Path, ...] = ()
) -> list[Submission]:
    """Every child of `root` is one student: a folder, a .py file or a .zip. `root` may be
    relative (to the current folder); errors quote it as given."""
    shown = str(root)
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise DiscoverError(msg("the submissions folder {path} does not exist", path=repr(shown)))
    if not root.is_dir():
        raise DiscoverError(msg("{path} is not a folder of submissions", path=repr(shown)))
    taken: set[str] = set(RESERVED)
    kit_own = {p.resolve() for p in leave_out}
    out = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or child.name in SKIP or child.resolve() in kit_own:
            continue
        stem = child.name if child.is_dir() else child.stem
        out.append(prepare(child, _safe_id(stem, taken), entry, scratch, leave_out))
    if not out:
        raise DiscoverError(msg("the submissions folder {path} is empty", path=repr(shown)))
    return out


def single(
    path: str | os.PathLike, entry: str, scratch: Path, leave_out: tuple[Path, ...] = ()
) -> Submission:
    """The self-check's one submission: a folder, a .py file or a .zip, relative (to the
    current folder) or absolute; errors quote it as given."""
    shown = str(path)
    # abspath, not resolve(): `.` becomes the folder's own name, and a linked server.py
    # keeps the name the student gave it.
    path = Path(os.path.abspath(path))
    if not path.exists():
        raise DiscoverError(msg("{path} does not exist", path=repr(shown)))
    stem = path.name if path.is_dir() else path.stem
    return prepare(path, _safe_id(stem, set()), entry, scratch, leave_out)
