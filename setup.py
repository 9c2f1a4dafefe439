"""Build step for the wheel: the metadata is in pyproject.toml.

The repository keeps assignments/ and sandbox/ at its top level, beside grader/. A wheel only
carries files inside its packages, so building one copies them into grader/_kit/, where
grader.kitpaths finds them once installed. An editable install reads them from the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# What grader.kitpaths looks for in grader/_kit once installed.
DATA_FOLDERS = ("assignments", "sandbox")
# An assignment's folder also holds its reference solution, its fixtures, hold-outs and
# examples: the kit's own tests need them, a student's installed `grade` must not carry them.
# Loading an assignment validates only assignment.toml and checks.py, which are shipped.
NOT_SHIPPED = ("__pycache__", "*.pyc", "reference", "fixtures", "holdout", "examples")


class BuildPyWithKitData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in DATA_FOLDERS:
            target = Path(self.build_lib) / "grader" / "_kit" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(HERE / name, target, ignore=shutil.ignore_patterns(*NOT_SHIPPED))


setup(cmdclass={"build_py": BuildPyWithKitData})
