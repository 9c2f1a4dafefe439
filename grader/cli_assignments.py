"""Command line: `grade assignments` (what is installed) and the `--assignments DIR` option."""

from __future__ import annotations

import argparse
import os
import sys

from grader import i18n
from grader.assignment import (
    ASSIGNMENTS,
    ENV_VAR,
    CourseFolder,
    Installed,
    course_folders,
    installed,
)
from grader.contract import Message, msg
from grader.i18n import Speaker
from grader.terminal import HelpFormatter, add_lang_option, helps, lang_in

# Under an assignment's first line: its checks, its problems, where it was found.
INDENT = "    "


def add_assignments_option(parser: argparse.ArgumentParser, sp: Speaker) -> None:
    parser.add_argument(
        "--assignments",
        action="append",
        default=[],
        metavar="DIR",
        help=helps(
            sp,
            msg(
                "a course's own assignments: a folder of assignment folders, or one "
                "assignment folder; repeatable, and added to those in ${var} "
                "({sep}-separated). A course's assignment takes over the kit's of the same name",
                var=ENV_VAR,
                sep=os.pathsep,
            ),
        ),
    )


def folders_of(ns: argparse.Namespace) -> list[CourseFolder]:
    """The course folders a command line asks for, then those of the environment variable."""
    return course_folders(ns.assignments, os.environ.get(ENV_VAR))


def _said(sp: Speaker, sentence: Message, indent: str = "") -> list[str]:
    """A sentence as lines, one per language shown."""
    return [indent + text for _, text in sp.renders(sentence)]


def describe(item: Installed, sp: Speaker | None = None) -> list[str]:
    """The lines `grade assignments` prints for one assignment, in `sp`'s languages."""
    sp = sp or i18n.speaker()
    lines = []
    if item.assignment is not None:
        a = item.assignment
        # The assignment's own bilingual title: English first, as the course wrote it, in both.
        title = a.title.zh if sp.lang == "zh" else a.title.en
        title += f" / {a.title.zh}" if sp.lang == "both" else ""
        lines.append(f"{item.name}: {title}")
        count, points = len(a.checks), a.max_score
        # Each built apart: Babel does not extract a msg() nested in another's arguments.
        checks = msg("{count} checks", count=count)
        if count == 1:
            checks = msg("{count} check", count=count)
        worth = msg("{points:g} points", points=points)
        if points == 1:
            worth = msg("{points:g} point", points=points)
        shape = msg(
            "{entry} ({kind}), {checks}, {points}: {ids}",
            entry=a.entry,
            kind=a.kind,
            checks=checks,
            points=worth,
            ids=", ".join(c.id for c in a.checks),
        )
        lines += _said(sp, shape, INDENT)
    else:
        count = len(item.messages)
        invalid = msg(
            "{name}: INVALID, {count} problems (it cannot be graded with until they are fixed)",
            name=item.name,
            count=count,
        )
        if count == 1:
            invalid = msg(
                "{name}: INVALID, {count} problem (it cannot be graded with until they are fixed)",
                name=item.name,
                count=count,
            )
        lines += _said(sp, invalid)
        for problem in item.messages:
            lines += _said(sp, problem, INDENT + "- ")
    lines += _said(
        sp,
        msg("from {origin}: {folder}", origin=item.origin_message, folder=str(item.folder)),
        INDENT,
    )
    for hidden in item.hides:
        override = (
            msg("overrides the kit's own {name}: {folder}", name=item.name, folder=str(hidden))
            if hidden.is_relative_to(ASSIGNMENTS)
            else msg("overrides another {name}: {folder}", name=item.name, folder=str(hidden))
        )
        lines += _said(sp, override, INDENT)
    return lines


def build_parser(sp: Speaker | None = None) -> argparse.ArgumentParser:
    sp = sp or i18n.speaker()
    p = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog="grade assignments",
        description=helps(
            sp,
            msg(
                "List the assignments that can be graded: the kit's own and a course's "
                "(--assignments DIR, ${var}), each validated.",
                var=ENV_VAR,
            ),
        ),
        epilog=helps(
            sp,
            msg(
                "Exit codes: 0 every assignment found is valid; 2 some are not (each "
                "problem is listed) or a bad command line."
            ),
        ),
    )
    add_assignments_option(p, sp)
    add_lang_option(p, sp)
    return p


def cmd_assignments(argv: list[str]) -> int:
    """Lists every assignment found, valid or not; AssignmentError (a folder given that holds
    none) reaches the caller, which prints it as a configuration fault."""
    sp = i18n.speaker(lang_in(argv))
    parser = build_parser(sp)
    ns, extra = parser.parse_known_args(argv)
    if extra:
        # `grade assignments -a epoll`: most likely a submissions folder that is called so.
        parser.error(
            sp.text(
                msg(
                    "unrecognized arguments: {args} (to grade a submissions folder named "
                    "'assignments', write it as ./assignments)",
                    args=" ".join(extra),
                )
            )
        )
    items = installed(folders_of(ns))
    for item in items:
        print("\n".join(describe(item, sp)), file=sys.stdout)
    bad = [item.name for item in items if not item.valid]
    if not items:
        print(sp.text(msg("no assignment installed")), file=sys.stdout)
    if bad:
        print(
            sp.text(
                msg(
                    "{count} of {total} assignments cannot be used: {names}",
                    count=len(bad),
                    total=len(items),
                    names=", ".join(bad),
                )
            ),
            file=sys.stderr,
        )
        return 2
    return 0
