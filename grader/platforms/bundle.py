"""The kit and what grading in place imports, as wheels taken from this environment (no network)."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from grader import kitpaths
from grader.contract import msg
from grader.terminal import UsageError

KIT = "socketgrade"
# The kit's own requirements a grading container does not need, with why. Nothing on the
# in-place path imports the Docker SDK (make_sandbox imports it only for `docker`), and it
# would bring requests, urllib3 and their certificates along for nothing.
LEFT_OUT = {"docker": "only the Docker sandbox uses it"}
# Markers are read for the oldest Python the bundle supports on Linux: a library needed only
# below 3.11 (tomli, exceptiongroup) stays out, one needed on Linux stays in.
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
# What a repacked wheel leaves out: bytecode (made again where it runs) and the installer's
# own notes, which describe this machine's install, not the package.
NOT_PACKED = re.compile(
    r"(^|/)__pycache__/|\.pyc$|\.dist-info/(INSTALLER|REQUESTED|direct_url\.json)$"
)
# The platform part of a wheel tag that Linux (glibc or musl) can load, or a pure wheel's.
LINUX_PLATFORM = re.compile(r"^(any|linux_\w+|manylinux\w*|musllinux\w*)$")
PLATFORM_NAMES = (("macosx", "macOS"), ("win", "Windows"))
BUILD_TIMEOUT = 600  # pip building the kit's wheel from the checkout: seconds, far above need


class BundleError(UsageError):
    """The wheels a bundle needs cannot be had here: one sentence that names the fix."""


@dataclass(frozen=True)
class Wheel:
    name: str  # the distribution's name, normalized (PEP 503)
    path: Path
    tags: tuple[str, ...]  # python-abi-platform, one per tag the wheel declares


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_tags(path: Path) -> tuple[str, ...]:
    """The tags the wheel's own WHEEL file declares (its file name can abbreviate them)."""
    with zipfile.ZipFile(path) as zf:
        infos = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/WHEEL", n)]
        if not infos:
            raise BundleError(msg("{path} is not a wheel: it has no WHEEL file", path=str(path)))
        text = zf.read(infos[0]).decode("utf-8", "replace")
    return tuple(
        line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")
    )


def wheel_name(path: Path) -> str:
    return normalize(path.name.split("-", 1)[0])


def require_linux(wheel: Wheel) -> None:
    """Refuse a wheel that Linux cannot load (built for the exporting Mac, say)."""
    wrong = [t for t in wheel.tags if not LINUX_PLATFORM.match(t.rsplit("-", 1)[-1])]
    if not wrong or len(wrong) < len(wheel.tags):
        return
    platform = wrong[0].rsplit("-", 1)[-1]
    system = next((name for key, name in PLATFORM_NAMES if platform.startswith(key)), platform)
    raise BundleError(
        msg(
            "the wheel of {name} here is built for {system} ({tag}) and the graders run Linux: "
            "fetch Linux wheels with `pip download {name} --only-binary=:all: --platform "
            "manylinux2014_x86_64 --python-version 3.11 -d linux-wheels` and export again "
            "with `--wheels linux-wheels`",
            name=wheel.name,
            system=system,
            tag=wrong[0],
        )
    )


def requirements_of(dist: metadata.Distribution) -> list[str]:
    """The distributions `dist` needs on the target (its markers read for TARGET)."""
    names = []
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(dict(TARGET)):
            names.append(normalize(req.name))
    return names


def closure() -> list[metadata.Distribution]:
    """The kit's distribution and every one it needs, the LEFT_OUT ones and theirs aside."""
    found: dict[str, metadata.Distribution] = {}
    todo = [KIT]
    while todo:
        name = todo.pop()
        if name in found or name in LEFT_OUT:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise BundleError(
                msg(
                    "{name}, which grading needs, is not installed with this kit: install it "
                    "(`pip install {name}`) or give its wheel with --wheels DIR",
                    name=name,
                )
            ) from None
        found[name] = dist
        todo.extend(requirements_of(dist))
    return [found[n] for n in sorted(found)]


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """The installed distribution as a wheel again, file for file from its RECORD: its
    dist-info already holds METADATA and WHEEL (whose tags name the file)."""
    name = normalize(dist.metadata["Name"])
    files = [f for f in dist.files or [] if not str(f).startswith("..")]
    info = next((f.parts[0] for f in files if f.parts[0].endswith(".dist-info")), None)
    if info is None:
        raise BundleError(
            msg("{name} is installed without a RECORD: reinstall it with pip", name=name)
        )
    tags = tuple(
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ) or ("py3-none-any",)
    parts = [sorted({t.split("-")[i] for t in tags}) for i in range(3)]
    stem = f"{name.replace('-', '_')}-{dist.version}"
    path = dest / f"{stem}-{'-'.join('.'.join(p) for p in parts)}.whl"
    record_name = f"{info}/RECORD"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            arc = f.as_posix()
            if arc == record_name or NOT_PACKED.search(arc):
                continue
            source = Path(str(dist.locate_file(f)))
            if not source.is_file():
                continue
            data = source.read_bytes()
            zf.writestr(arc, data)
            record.append(f"{arc},{_record_hash(data)},{len(data)}")
        record.append(f"{record_name},,")
        zf.writestr(record_name, "\n".join(record) + "\n")
    return path


def _kit_is_installed(dist: metadata.Distribution) -> bool:
    """True when the kit's distribution is a real install of the running `grader` (not an
    editable one, nor the checkout's own egg-info)."""
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        return False
    init = next((f for f in dist.files or [] if f.as_posix() == "grader/__init__.py"), None)
    if init is None or dist.read_text("RECORD") is None:
        return False
    return Path(str(dist.locate_file(init))).resolve() == (kitpaths.PACKAGE / "__init__.py")


# What building the kit's wheel reads from its checkout (setup.py copies assignments/ and
# sandbox/ into the package). It builds from a copy: a build/ left in the checkout would be
# both litter and, reused by setuptools, a stale source for the next wheel.
BUILD_INPUTS = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "grader",
    "assignments",
    "sandbox",
)
NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_kit")


def build_kit(dest: Path) -> Path:
    """The kit's wheel built from the checkout the running `grader` comes from."""
    source = kitpaths.IMPORT_ROOT
    if not (source / "pyproject.toml").is_file():
        raise BundleError(
            msg(
                "the kit runs from {path}, which is neither an installed wheel nor a checkout "
                "to build one from: install socketgrade with pip and export again",
                path=str(source),
            )
        )
    with tempfile.TemporaryDirectory(prefix="sg-build-") as tmp:
        tree, out = Path(tmp) / "src", Path(tmp) / "dist"
        tree.mkdir()
        for part in BUILD_INPUTS:
            if (source / part).is_dir():
                shutil.copytree(source / part, tree / part, ignore=NOT_COPIED)
            elif (source / part).is_file():
                shutil.copyfile(source / part, tree / part)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--quiet",
                "--disable-pip-version-check",
                "--wheel-dir",
                str(out),
                str(tree),
            ],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        built = sorted(out.glob(f"{KIT}-*.whl"))
        if done.returncode != 0 or not built:
            raise BundleError(
                msg(
                    "building the kit's wheel from {path} failed (setuptools 70.1 or later, or "
                    "the wheel package, must be installed beside it): {error}",
                    path=str(source),
                    error=(done.stderr or done.stdout).strip()[-600:],
                )
            )
        target = dest / built[0].name
        shutil.move(str(built[0]), target)
    return target


def collect(dest: Path, extra: Path | None = None) -> list[Wheel]:
    """Every wheel grading in place needs, written to `dest`: the kit and its libraries from
    this environment, each replaced by a wheel of the same name in `extra` if there is one."""
    dest.mkdir(parents=True, exist_ok=True)
    given: dict[str, Path] = {}
    if extra is not None:
        if not extra.is_dir():
            raise BundleError(msg("--wheels {path} is not a folder", path=repr(str(extra))))
        given = {wheel_name(p): p for p in sorted(extra.glob("*.whl"))}
    wheels = []
    for dist in closure():
        name = normalize(dist.metadata["Name"])
        if name in given:
            path = dest / given[name].name
            shutil.copyfile(given.pop(name), path)
        elif name == KIT and not _kit_is_installed(dist):
            path = build_kit(dest)
        else:
            path = repack(dist, dest)
        wheels.append(Wheel(name, path, wheel_tags(path)))
    for name, source in given.items():  # added by the course: taken as they are
        path = dest / source.name
        shutil.copyfile(source, path)
        wheels.append(Wheel(name, path, wheel_tags(path)))
    for wheel in wheels:
        require_linux(wheel)
    return wheels
