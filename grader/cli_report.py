"""`grade report OUT [--lang L]`: every report and the class index rendered again from the
results a grading saved (OUT/<id>/result.json), in any language, without grading anything."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from grader import i18n, render, saved
from grader.contract import msg
from grader.i18n import Speaker
from grader.terminal import HelpFormatter, UsageError, add_lang_option, helps, say

__all__ = ["add_lang_option", "build_report_parser", "cmd_report", "navigation"]


def build_report_parser(sp: Speaker | None = None) -> argparse.ArgumentParser:
    sp = sp or i18n.speaker()
    p = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog="grade report",
        description=helps(
            sp,
            msg(
                "Render the reports and the class index again from a graded output folder "
                "(its saved results), for example in another language. Nothing is graded; "
                "results.json and grades.csv stay as they are."
            ),
        ),
        epilog=helps(
            sp,
            msg(
                "Exit codes: 0 every report was rendered; 1 some saved results could not be "
                "read (each is named); 2 a bad command line."
            ),
        ),
    )
    p.add_argument(
        "out",
        help=helps(sp, msg("the output folder of `grade` (holding <id>/result.json)")),
    )
    add_lang_option(p, sp)
    return p


def navigation(ids: list[str], ident: str) -> dict:
    """A report's links: the class index and the previous and next student, in the index's
    default order (by submission id); each submission's folder is named by its id."""
    from urllib.parse import quote

    order = sorted(ids)
    i = order.index(ident)

    def report(j: int) -> str | None:
        return f"../{quote(order[j])}/report.html" if 0 <= j < len(order) else None

    return {"index": "../index.html", "prev": report(i - 1), "next": report(i + 1)}


def cmd_report(ns) -> int:
    sp = i18n.speaker(ns.lang)
    out = Path(os.path.abspath(ns.out))
    if not out.is_dir():
        raise UsageError(msg("the output folder {path} does not exist", path=repr(ns.out)))
    found, damaged = saved.read_folder(out)
    results = [s.result for s in found]
    for exc in damaged:
        # One damaged file must not cost the class its reports: say which, and go on.
        say(
            sp,
            msg(
                "could not read {file} ({error}); that report was left as it was",
                file=str(exc.path),
                error=exc.reason,
            ),
            "red",
        )
    if not results:
        if damaged:
            return 1
        raise UsageError(
            msg(
                "no saved results in {path}: grade the submissions into it first "
                "(a folder graded before this kit version has none)",
                path=repr(ns.out),
            )
        )
    ids = [r.submission.id for r in results]
    for s in found:
        ident = s.result.submission.id
        render.write_report(
            s.result,
            out / ident / "report.html",
            self_check=s.self_check,
            speaker=sp,
            # A self-check's report stands alone, as `grade check` wrote it.
            nav=None if s.self_check else navigation(ids, ident),
        )
    render.write_index(results, results[0].assignment, out / "index.html", speaker=sp)
    say(
        sp,
        msg(
            "{count} reports and the index rendered again in {out}",
            count=len(results),
            out=str(out / "index.html"),
        ),
    )
    return 1 if damaged else 0
