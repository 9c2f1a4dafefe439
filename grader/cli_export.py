"""`grade export gradescope|prairielearn --assignment A --out PATH`: what a platform needs to grade
one assignment in its own containers, the kit's wheels inside."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from grader import i18n
from grader.assignment import load_assignment
from grader.cli_assignments import add_assignments_option, folders_of
from grader.contract import msg
from grader.i18n import Speaker
from grader.sandbox.common import DEFAULT_WALL_CLOCK
from grader.terminal import HelpFormatter, UsageError, add_lang_option, helps, say


def _common(p: argparse.ArgumentParser, sp: Speaker) -> None:
    p.add_argument("--assignment", "-a", required=True, help=helps(sp, msg("e.g. epoll")))
    add_assignments_option(p, sp)
    p.add_argument(
        "--wheels",
        metavar="DIR",
        help=helps(
            sp,
            msg(
                "a folder of wheels that replace or add to those taken from this "
                "environment (e.g. Linux wheels when exporting from macOS)"
            ),
        ),
    )
    p.add_argument(
        "--wall-clock",
        type=float,
        default=DEFAULT_WALL_CLOCK,
        help=helps(sp, msg("seconds allowed per submission (default: %(default)s)")),
    )
    add_lang_option(p, sp)


def build_export_parser(sp: Speaker | None = None) -> argparse.ArgumentParser:
    sp = sp or i18n.speaker()
    p = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog="grade export",
        description=helps(
            sp,
            msg(
                "Write what a grading platform needs to grade one assignment in its own "
                "containers, with the kit and its libraries inside (installed there without "
                "network): Gradescope's autograder.zip, or PrairieLearn's grader image."
            ),
        ),
        epilog=helps(sp, msg("Exit codes: 0 written; 2 a bad command line or a missing wheel.")),
    )
    sub = p.add_subparsers(dest="platform", required=True, metavar="PLATFORM")
    platforms = {
        "gradescope": (
            msg("autograder.zip for a Gradescope programming assignment"),
            "autograder.zip",
            msg("the zip to write (default: autograder.zip)"),
        ),
        "prairielearn": (
            msg("a PrairieLearn grader image's build context and info.json"),
            "prairielearn",
            msg("the folder to write (default: prairielearn)"),
        ),
    }
    parsers = {}
    for name, (about, default, where) in platforms.items():
        parsers[name] = one = sub.add_parser(
            name, formatter_class=HelpFormatter, help=helps(sp, about), description=helps(sp, about)
        )
        _common(one, sp)
        one.add_argument("--out", "-o", default=default, help=helps(sp, where))
    pl = parsers["prairielearn"]
    pl.add_argument(
        "--image",
        help=helps(
            sp,
            msg("the image's name in info.json (default: socketgrade-ASSIGNMENT:VERSION)"),
        ),
    )
    return p


def cmd_export(argv: list[str], sp: Speaker | None = None) -> int:
    # Imported here: `grade` itself starts without the exports' libraries (packaging).
    from grader.platforms import gradescope, prairielearn

    ns = build_export_parser(sp).parse_args(argv)
    sp = i18n.speaker(ns.lang)
    assignment = load_assignment(ns.assignment, folders=folders_of(ns))
    wheels = Path(os.path.abspath(ns.wheels)) if ns.wheels else None
    out = Path(os.path.abspath(ns.out))
    if ns.wall_clock <= 0:
        raise UsageError(msg("--wall-clock must be above 0, not {value}", value=ns.wall_clock))
    lang = sp.lang
    if ns.platform == "gradescope":
        if out.is_dir():
            raise UsageError(msg("{path} is a folder: --out names the zip", path=repr(ns.out)))
        names = gradescope.write_zip(out, assignment, lang, ns.wall_clock, wheels)
        say(
            sp,
            msg(
                "{path}: Gradescope's autograder for {assignment} ({count} wheels); upload "
                "it with the autograder timeout at {timeout} s or more",
                path=str(out),
                assignment=assignment.name,
                count=len(names),
                timeout=gradescope.timeout(ns.wall_clock),
            ),
        )
        return 0
    if out.exists() and not out.is_dir():
        raise UsageError(
            msg("the output path {path} exists and is not a folder", path=repr(ns.out))
        )
    image = ns.image or prairielearn.default_image(assignment)
    names = prairielearn.write_folder(out, assignment, lang, ns.wall_clock, image, wheels)
    say(
        sp,
        msg(
            "{path}: PrairieLearn's grader image for {assignment} ({count} wheels); build and "
            "push it as {image}, then merge info.json into the question's (see README.md there)",
            path=str(out),
            assignment=assignment.name,
            count=len(names),
            image=image,
        ),
    )
    return 0
