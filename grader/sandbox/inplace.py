"""The in-place sandbox: for when the kit already runs inside a container it does not control
(Gradescope's and PrairieLearn's graders), as root, and cannot start Docker. The harness runs
as root; the student's program runs as a dedicated unprivileged user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from grader.contract import msg
from grader.sandbox.common import DEFAULT_WALL_CLOCK, SandboxError
from grader.sandbox.local import LocalSandbox

STUDENT_USER = "sgstudent"


def ensure_student_user(name: str = STUDENT_USER) -> int:
    """The uid of the dedicated student user, created if missing."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        pass
    if shutil.which("useradd"):
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return pwd.getpwnam(name).pw_uid
    raise SandboxError(msg("cannot create the student user {name}", name=name))


class InPlaceSandbox(LocalSandbox):
    """The harness as root on this machine (a grading container); the student's program as
    a dedicated unprivileged user."""

    name = "inplace"

    def __init__(self, wall_clock: float = DEFAULT_WALL_CLOCK, scratch: Path | None = None):
        if os.geteuid() != 0:
            raise SandboxError(
                msg(
                    "the in-place sandbox must run as root (it starts the student's program "
                    "as a dedicated unprivileged user): use --sandbox local or docker here"
                )
            )
        super().__init__(wall_clock, scratch)
        self.uid = ensure_student_user()

    def student_uid(self) -> int | None:
        return self.uid

    def prepare_run_folder(self, folder: Path) -> None:
        os.chmod(folder, 0o700)

    def describe(self) -> dict:
        info = super().describe()
        info["sandbox"] = "in place (as root in this container; the program as a dedicated user)"
        return info
