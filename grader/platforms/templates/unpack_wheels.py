"""Unpacks wheels into one folder for PYTHONPATH with the standard library alone (no pip, no venv).

Usage: python3 unpack_wheels.py WHEELS_DIR TARGET_DIR
"""

import compileall
import shutil
import sys
import zipfile
from pathlib import Path

OLDEST = (3, 11)  # the kit's own floor (pyproject's requires-python)


def unpack(wheel: Path, target: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            # A wheel names files inside it; one that climbs out is not one we made.
            if name.startswith("/") or ".." in Path(name).parts:
                raise SystemExit(f"{wheel.name}: refusing the path {name!r}")
        zf.extractall(target)
    # A wheel's .data/purelib and .data/platlib hold modules that belong beside the others.
    for data in target.glob("*.data"):
        for kind in ("purelib", "platlib"):
            for item in (data / kind).glob("*") if (data / kind).is_dir() else ():
                shutil.move(str(item), str(target / item.name))
        shutil.rmtree(data)


def main(argv: list[str]) -> int:
    if sys.version_info < OLDEST:
        print(
            f"socketgrade needs Python {'.'.join(map(str, OLDEST))} or later as python3 and "
            f"this one is {sys.version.split()[0]}: choose a base image with a newer one "
            "(on Gradescope: Ubuntu 24.04)",
            file=sys.stderr,
        )
        return 1
    wheels, target = Path(argv[1]), Path(argv[2])
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    found = sorted(wheels.glob("*.whl"))
    if not found:
        print(f"no wheels in {wheels}", file=sys.stderr)
        return 1
    for wheel in found:
        unpack(wheel, target)
    # Compiled once here, as root: every grading would otherwise compile the same files.
    compileall.compile_dir(str(target), quiet=1)
    print(f"unpacked {len(found)} wheels into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
