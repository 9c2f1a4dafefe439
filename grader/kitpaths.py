"""Where the kit's own files are: beside the package in a checkout, inside it in a wheel."""

from __future__ import annotations

import site
import sys
from pathlib import Path

# The `grader` package folder. The Docker sandbox bind-mounts it into every container.
PACKAGE = Path(__file__).resolve().parent
# The folder `grader` is imported from: the checkout, or site-packages.
IMPORT_ROOT = PACKAGE.parent
# The wheel's build step (setup.py) copies the repository's top-level data folders here,
# because a wheel can only carry files that sit inside one of its packages.
BUNDLED = PACKAGE / "_kit"


def _kit_root() -> Path:
    """The folder holding assignments/ and sandbox/. An installed wheel has them bundled in
    the package; a checkout (and an editable install, which imports from the checkout) has
    them beside grader/, so an edited check takes effect without reinstalling."""
    if (BUNDLED / "assignments").is_dir():
        return BUNDLED
    return IMPORT_ROOT


ROOT = _kit_root()
ASSIGNMENTS = ROOT / "assignments"
SANDBOX = ROOT / "sandbox"


def harness_pythonpath() -> str | None:
    """PYTHONPATH for a harness started with this interpreter, so that it imports this very
    `grader`. None when the interpreter finds it anyway (a wheel in site-packages): putting
    site-packages on PYTHONPATH would place it before the standard library."""
    sites = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    sites |= {Path(p).resolve() for p in sys.path if p.endswith("-packages")}
    return None if IMPORT_ROOT in sites else str(IMPORT_ROOT)


def precompile(*paths: Path) -> None:
    """Bytecode beside the kit's modules (__pycache__), as pip writes it at install, for a
    checkout too: every grading's harness imports them afresh, in a sandbox that writes no
    bytecode (PYTHONDONTWRITEBYTECODE, a read-only mount), so each would otherwise compile
    them all again. Up-to-date files are left alone; a folder we cannot write is skipped."""
    import compileall
    import re

    bundled = re.compile(r"[/\\]_kit[/\\]")  # a wheel's assignments: fixtures, not the kit
    for path in paths:
        try:
            if path.is_dir():
                compileall.compile_dir(path, quiet=2, rx=bundled)
            else:
                compileall.compile_file(path, quiet=2)
        except OSError:
            pass
