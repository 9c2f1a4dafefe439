"""Command line: `grade assignments` (what is installed) and the `--assignments DIR` option."""

from __future__ import annotations

import argparse
import os
import sys

from grader.assignment import (
    ASSIGNMENTS,
    ENV_VAR,
    CourseFolder,
    Installed,
    course_folders,
    installed,
)

ASSIGNMENTS_HELP = (
    f"a course's own assignments: a folder of assignment folders, or one "
    f"assignment folder; repeatable, and added to those in ${ENV_VAR} "
    f"({os.pathsep}-separated). A course's assignment takes over the kit's of "
    f"the same name"
)
LIST_EXIT_CODES = (
    "Exit codes: 0 every assignment found is valid; 2 some are not (each "
    "problem is listed) or a bad command line."
)


def add_assignments_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--assignments", action="append", default=[], metavar="DIR", help=ASSIGNMENTS_HELP
    )


def folders_of(ns: argparse.Namespace) -> list[CourseFolder]:
    """The course folders a command line asks for, then those of the environment variable."""
    return course_folders(ns.assignments, os.environ.get(ENV_VAR))


def describe(item: Installed) -> list[str]:
    """The lines `grade assignments` prints for one assignment."""
    lines = []
    if item.assignment is not None:
        a = item.assignment
        points = f"{a.max_score:g} point{'s' if a.max_score != 1 else ''}"
        checks = f"{len(a.checks)} check{'s' if len(a.checks) != 1 else ''}"
        lines.append(f"{item.name}: {a.title.en} / {a.title.zh}")
        lines.append(
            f"    {a.entry} ({a.kind}), {checks}, {points}: {', '.join(c.id for c in a.checks)}"
        )
    else:
        count = len(item.problems)
        lines.append(
            f"{item.name}: INVALID, {count} problem{'s' if count != 1 else ''} "
            f"(it cannot be graded with until they are fixed)"
        )
        lines += [f"    - {problem}" for problem in item.problems]
    lines.append(f"    from {item.origin}: {item.folder}")
    for hidden in item.hides:
        whose = "the kit's own" if hidden.is_relative_to(ASSIGNMENTS) else "another"
        lines.append(f"    overrides {whose} {item.name}: {hidden}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grade assignments",
        description="List the assignments that can be graded: the kit's own and a course's "
        "(--assignments DIR, $" + ENV_VAR + "), each validated.",
        epilog=LIST_EXIT_CODES,
    )
    add_assignments_option(p)
    return p


def cmd_assignments(argv: list[str]) -> int:
    """Lists every assignment found, valid or not; AssignmentError (a folder given that holds
    none) reaches the caller, which prints it as a configuration fault."""
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    if extra:
        # `grade assignments -a epoll`: most likely a submissions folder that is called so.
        parser.error(
            f"unrecognized arguments: {' '.join(extra)} (to grade a submissions "
            f"folder named 'assignments', write it as ./assignments)"
        )
    items = installed(folders_of(ns))
    for item in items:
        print("\n".join(describe(item)), file=sys.stdout)
    bad = [item.name for item in items if not item.valid]
    if not items:
        print("no assignment installed", file=sys.stdout)
    if bad:
        print(
            f"{len(bad)} of {len(items)} assignments cannot be used: {', '.join(bad)}",
            file=sys.stderr,
        )
        return 2
    return 0
