"""`grade sandbox build|status`: the command line of the Docker grading image."""

from __future__ import annotations

import argparse
import signal
import sys

from grader.sandbox.common import SandboxError
from grader.sandbox.docker.image import IMAGE, ONLINE_BASE, build_image, image_status

# Ctrl-C's exit code, as a shell reports a process that SIGINT ended.
INTERRUPTED = 128 + signal.SIGINT


def cli_sandbox(argv: list[str]) -> int:
    """`grade sandbox build [--offline|--online]` and `grade sandbox status`."""
    parser = argparse.ArgumentParser(
        prog="grade sandbox", description="The Docker image submissions are graded in."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help=f"build {IMAGE}")
    how = build.add_mutually_exclusive_group()
    how.add_argument(
        "--offline",
        action="store_true",
        help="build on a Debian base made with debootstrap (no registry needed)",
    )
    how.add_argument(
        "--online",
        action="store_true",
        help=f"build on {ONLINE_BASE} (pulled from the registry if missing)",
    )
    sub.add_parser("status", help=f"say whether {IMAGE} is present and up to date")
    ns = parser.parse_args(argv)
    try:
        if ns.action == "build":
            offline = True if ns.offline else (False if ns.online else None)
            build_image(offline=offline)
            return 0
        text = image_status()
        print(text)
        return 0 if " up to date " in text else 1
    except SandboxError as exc:
        print(f"grade sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("grade sandbox: interrupted", file=sys.stderr)
        return INTERRUPTED
