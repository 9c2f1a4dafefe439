"""One dependency story: the grading image's pins agree with pyproject.toml's ranges (offline)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS = ROOT / "sandbox" / "requirements.txt"
PIN_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s#]+)\s*(#.*)?$")


def _lock_image():
    """scripts/lock_image.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("lock_image", ROOT / "scripts" / "lock_image.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while they are being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lock_image = _lock_image()


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def _harness() -> list[Requirement]:
    return [Requirement(line) for line in _project()["optional-dependencies"]["harness"]]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate(REQUIREMENTS.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        found = PIN_LINE.match(raw.strip())
        assert found, f"sandbox/requirements.txt:{number}: {raw!r} is not name==version"
        name = canonicalize_name(found["name"])
        assert name not in pins, f"sandbox/requirements.txt pins {name} twice"
        pins[name] = Version(found["version"])
    return pins


def _needs(name: str, extras: frozenset[str] = frozenset()) -> list[Requirement]:
    """What an installed package asks for in the image (markers evaluated for the image)."""
    try:
        requires = metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:
        pytest.fail(
            f"{name} is pinned for the image but not installed here: run "
            f"`bash scripts/setup.sh` and test with .venv/bin/python"
        )
    needs = [Requirement(line) for line in requires]
    return [req for req in needs if lock_image.marker_applies(req, extras)]


def test_pins_are_exact_and_header_says_how_they_were_made():
    text = REQUIREMENTS.read_text(encoding="utf-8")
    assert _pins(), "sandbox/requirements.txt pins nothing"
    assert text.startswith(lock_image.HEADER), "sandbox/requirements.txt lost its header"


def test_every_direct_harness_need_is_pinned_within_its_range():
    pins = _pins()
    for req in _harness():
        name = canonicalize_name(req.name)
        assert name in pins, f"pyproject's harness extra needs {req}, the image does not pin it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"the image pins {name}=={pins[name]}, outside pyproject's range {req}"
        )


def test_harness_ranges_are_runtime_dependencies_too():
    """The local sandbox runs the harness in the kit's own environment: same needs, same ranges."""
    runtime = {
        canonicalize_name(Requirement(line).name): Requirement(line)
        for line in _project()["dependencies"]
    }
    for req in _harness():
        name = canonicalize_name(req.name)
        assert name in runtime, f"{req} is in the harness extra but not in dependencies"
        assert runtime[name].specifier == req.specifier, (
            f"dependencies say {runtime[name]}, the harness extra says {req}"
        )


def test_closure_is_complete_and_holds_nothing_else():
    pins = _pins()
    reached: set[str] = set()
    todo = [(req, "socketgrade[harness]") for req in _harness()]
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        assert name in pins, (
            f"{parent} needs {req} in the image; sandbox/requirements.txt "
            f"does not pin it (run scripts/lock_image.py)"
        )
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{parent} needs {req}; the image pins {name}=={pins[name]}"
        )
        if name not in reached:
            reached.add(name)
            todo += [(sub, name) for sub in _needs(name, frozenset(req.extras))]
    stray = sorted(set(pins) - reached)
    assert not stray, f"pinned for the image but needed by nothing in the harness extra: {stray}"


def test_file_is_what_lock_image_writes():
    """Hand edits (a reordered pin, a changed comment) are caught: the script is the only writer."""
    assert REQUIREMENTS.read_text(encoding="utf-8") == lock_image.lock(), (
        "sandbox/requirements.txt differs from what scripts/lock_image.py writes: run it"
    )
