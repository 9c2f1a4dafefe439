"""Command line: `grade SUBMISSIONS --assignment A`, `grade check [PATH]`, `grade report OUT`,
`grade sandbox …`, `grade assignments`, `grade export …`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from concurrent.futures import as_completed
from dataclasses import replace
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from grader import export, i18n, render, resume, terminal
from grader.assignment import AssignmentError, load_assignment
from grader.cli_assignments import add_assignments_option, cmd_assignments, folders_of
from grader.cli_docker import add_docker_host_option, engines_of
from grader.cli_export import cmd_export
from grader.cli_report import build_report_parser, cmd_report, navigation
from grader.contract import join, msg
from grader.discover import DiscoverError, discover, single
from grader.i18n import Speaker
from grader.models import (
    GRADER_ERROR,
    GRADER_ERROR_LABEL,
    Assignment,
    RunOutcome,
    RunRequest,
    Submission,
    SubmissionResult,
)
from grader.resume import write_submission
from grader.sandbox import DEFAULT_WALL_CLOCK, SandboxError, batch_pool, end_batch, make_sandbox
from grader.score import score
from grader.terminal import HelpFormatter, UsageError, console, helps, say, summary

# `grade check` exits 1 when the student's code fails a check and this when the kit or the
# sandbox could not check it: a script (or a student) must not read the two the same way.
CHECK_GRADER_ERROR = 4
GRADE_EXIT_CODES = msg(
    "Exit codes: 0 every submission was graded (whatever its score); 1 the "
    "grader or the sandbox failed on at least one submission (GRADER ERROR: "
    "status grader_error in grades.csv, 'could not be graded' in index.html); "
    "2 a bad command line; 3 the sandbox cannot run (no Docker engine or "
    "image); 130 interrupted."
)
CHECK_EXIT_CODES = msg(
    "Exit codes: 0 all visible checks pass; 1 some checks fail (your code: "
    "see why and hint); 4 GRADER ERROR: the kit or the sandbox could not check "
    "some of it, which is not your code's fault; 2 a bad command line; 3 the "
    "sandbox cannot run (no Docker engine or image)."
)


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def grade_one(
    sandbox, assignment: Assignment, sub: Submission, only: tuple[str, ...], wall_clock: float
) -> SubmissionResult:
    """discover → sandbox → score for one submission. A submission's fault never raises."""
    outcome = None
    if sub.folder is not None and not sub.problem:
        start = time.monotonic()
        try:
            outcome = sandbox.run(RunRequest(sub, assignment, only, wall_clock))
        except SandboxError:
            raise  # no engine, no image: the whole batch stops with one sentence
        except Exception as exc:  # a fault of the kit: this submission is not graded
            outcome = RunOutcome(
                None,
                time.monotonic() - start,
                sandbox.name,
                error=msg(
                    "the grader failed on this submission ({error}); it is not the student's fault",
                    error=repr(exc),
                ),
                error_fault="infrastructure",
            )
    result = score(assignment, sub, outcome, only)
    return replace(result, engine=outcome.engine) if outcome else result


# The local sandbox reads the server's state from /proc and the checks expect epoll: Linux only.
LOCAL_SANDBOX_PLATFORMS = ("linux",)
PLATFORM_NAMES = {"darwin": "macOS", "win32": "Windows", "cygwin": "Windows (Cygwin)"}


def _require_local_platform(command: str) -> None:
    """On macOS or Windows the local sandbox cannot judge anything: say so before starting."""
    if sys.platform.startswith(LOCAL_SANDBOX_PLATFORMS):
        return
    name = PLATFORM_NAMES.get(sys.platform, sys.platform)
    raise UsageError(
        msg(
            "the local sandbox needs Linux (it reads /proc and the servers use epoll) and "
            "this is {platform}: run `{command} --sandbox docker` (with Docker Desktop "
            "running) instead",
            platform=name,
            command=command,
        )
    )


def _not_a_folder(value: str) -> UsageError:
    return UsageError(msg("the output path {path} exists and is not a folder", path=repr(value)))


def _out_folder(value: str) -> Path:
    """--out as an absolute path: the harness runs in a folder of its own, where a relative
    path would point elsewhere."""
    out = Path(os.path.abspath(value))
    if out.exists() and not out.is_dir():
        raise _not_a_folder(value)
    return out


def _prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise _not_a_folder(str(out))
    out.mkdir(parents=True, exist_ok=True)
    scratch = out / ".work"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    return scratch


def cmd_grade(ns) -> int:
    sp = i18n.speaker(ns.lang)
    assignment = load_assignment(ns.assignment, folders=folders_of(ns))
    if ns.sandbox == "local":
        _require_local_platform(f"grade {ns.submissions} -a {assignment.name}")
    out = _out_folder(ns.out)
    if out == Path(os.path.abspath(ns.submissions)):
        raise UsageError(
            msg(
                "the output folder {path} is the submissions folder itself: choose another --out",
                path=repr(ns.out),
            )
        )
    scratch = _prepare_out(out)
    try:
        # The output folder may lie inside the submissions (or a student's) folder: it is
        # never graded as part of a hand-in.
        subs = discover(ns.submissions, assignment.entry, scratch / "submissions", leave_out=(out,))
        ids = [s.id for s in subs]
        runs, notify = scratch / "runs", (lambda sentence: say(sp, sentence, "yellow"))
        sandbox = make_sandbox(ns.sandbox, ns.wall_clock, runs, ns.engines, notify)
        # Before anything is written: the class the kept reports' links were made for.
        before = resume.reported(out)
        now = resume.now_for(assignment, sandbox.name)
        results, todo = resume.split(subs, out, now, ns.regrade)
        if results:
            say(sp, resume.kept_line(len(results), len(subs)))
            resume.keep_reports(results, out, ids, before, sp)
        unfinished: list[str] = []
        lock = threading.Lock()
        with Progress(
            TextColumn(terminal.token(sp, terminal.GRADING), style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}", markup=False),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("", total=len(todo))
            # Several engines: as many at once as all their slots (each keeps to its own).
            pool = batch_pool(sandbox, ns.jobs, len(todo))
            try:
                futures = {
                    pool.submit(grade_one, sandbox, assignment, s, (), ns.wall_clock): s
                    for s in todo
                }
                for fut in as_completed(futures):
                    sub = futures.pop(fut)  # its result is not kept beyond what follows
                    result = fut.result()
                    write_submission(result, out, speaker=sp, nav=navigation(ids, sub.id))
                    with lock:
                        results.append(result.in_brief())
                    if result.status == GRADER_ERROR:
                        unfinished.append(sub.id)
                    progress.update(
                        task,
                        advance=1,
                        description=(
                            f"{sub.id}: {terminal.token(sp, GRADER_ERROR_LABEL)}"
                            if result.status == GRADER_ERROR
                            else f"{sub.id}: {result.score:g}/{result.max_score:g}"
                        ),
                    )
            except KeyboardInterrupt:
                sandbox.stop_all()
                pool.shutdown(wait=False, cancel_futures=True)
                _finish(results, assignment, out, sp)
                say(
                    sp,
                    msg(
                        "interrupted: {done} of {total} submissions graded; their reports "
                        "are in {out}",
                        done=len(results),
                        total=len(subs),
                        out=str(out),
                    ),
                )
                return 130
            finally:
                end_batch(pool, sandbox)
        _finish(results, assignment, out, sp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary(results, sp)
    say(
        sp,
        msg(
            "reports: {index}   grades: {grades}",
            index=str(out / "index.html"),
            grades=str(out / "grades.csv"),
        ),
    )
    if unfinished:
        say(
            sp,
            msg(
                "{count} submission(s) could not be graded because of the grader or the "
                "sandbox, not the students: {ids}; see their report.html",
                count=len(unfinished),
                ids=", ".join(sorted(unfinished)),
            ),
            "red",
        )
        return 1
    return 0


def _finish(
    results: list[SubmissionResult], assignment: Assignment, out: Path, sp: Speaker
) -> None:
    results.sort(key=lambda r: r.submission.id)
    export.write_grades_csv(results, out / "grades.csv")
    render.write_index(results, assignment, out / "index.html", speaker=sp)


def cmd_check(ns) -> int:
    """The student's self-check: visible checks only, reasons in the terminal, exit 0 iff all
    pass."""
    sp = i18n.speaker(ns.lang)
    assignment = load_assignment(ns.assignment, folders=folders_of(ns))
    only = tuple(c.id for c in assignment.checks if c.self_check)
    if ns.sandbox == "local":
        _require_local_platform(f"grade check {ns.path} -a {assignment.name}")
    out = _out_folder(ns.out)
    scratch = _prepare_out(out)
    try:
        # `grade check .` writes its report inside the folder it checks: left out of it.
        sub = single(ns.path, assignment.entry, scratch / "submission", leave_out=(out,))
        sandbox = make_sandbox(ns.sandbox, ns.wall_clock, scratch=scratch / "runs")
        status = msg(
            "checking {path} against '{assignment}' ({count} visible checks, {sandbox} sandbox)…",
            path=str(ns.path),
            assignment=assignment.name,
            count=len(only),
            sandbox=sandbox.name,
        )
        with console.status(Text(sp.render(status))), render.compiling_templates(sp):
            result = grade_one(sandbox, assignment, sub, only, ns.wall_clock)
        report = write_submission(result, out, self_check=True, speaker=sp)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    terminal.check_outcome(result, report, sp)
    errors = result.grader_errors
    if errors:
        return CHECK_GRADER_ERROR
    return 0 if all(c.passed for c in result.checks) else 1


def cmd_sandbox(argv: list[str]) -> int:
    from grader.sandbox.docker.cli import cli_sandbox

    return cli_sandbox(argv)


def build_parser(sp: Speaker | None = None) -> argparse.ArgumentParser:
    sp = sp or i18n.speaker()
    p = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog="grade",
        description=helps(
            sp, msg("Grade socket-programming submissions and explain each verdict.")
        ),
        epilog=helps(
            sp,
            join(
                [
                    msg(
                        "Also: `grade check [PATH] --assignment A` (a student's self-check), "
                        "`grade report OUT` (the reports again, from saved results, in any "
                        "--lang), `grade assignments` (what can be graded), `grade sandbox "
                        "build|status` (the Docker grading image) and `grade export "
                        "gradescope|prairielearn` (an autograder for those platforms)."
                    ),
                    GRADE_EXIT_CODES,
                ],
                " ",
            ),
        ),
    )
    p.add_argument(
        "submissions",
        help=helps(sp, msg("folder with one child per student: a folder, a .py file or a .zip")),
    )
    p.add_argument("--assignment", "-a", required=True, help=helps(sp, msg("e.g. epoll")))
    add_assignments_option(p, sp)
    p.add_argument(
        "--out", "-o", default="out", help=helps(sp, msg("output folder (default: out)"))
    )
    _add_run_options(p, sp, ("docker", "local", "inplace"))
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=default_jobs(),
        help=helps(sp, msg("submissions graded at once (default: %(default)s)")),
    )
    p.add_argument(
        "--regrade",
        action="store_true",
        help=helps(
            sp,
            msg(
                "grade every submission again, also those whose saved result in --out is for "
                "the same files, assignment, kit version and sandbox (by default kept)"
            ),
        ),
    )
    add_docker_host_option(p, sp, grading=True)
    terminal.add_lang_option(p, sp)
    return p


def _add_run_options(p: argparse.ArgumentParser, sp: Speaker, sandboxes: tuple) -> None:
    """--sandbox (the first of `sandboxes` by default) and --wall-clock, as grade and grade
    check both take them."""
    p.add_argument(
        "--sandbox",
        choices=sandboxes,
        default=sandboxes[0],
        help=helps(sp, msg("where the submissions run (default: %(default)s)")),
    )
    p.add_argument(
        "--wall-clock",
        type=float,
        default=DEFAULT_WALL_CLOCK,
        help=helps(sp, msg("seconds allowed per submission (default: %(default)s)")),
    )


def build_check_parser(sp: Speaker | None = None) -> argparse.ArgumentParser:
    sp = sp or i18n.speaker()
    p = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog="grade check",
        description=helps(sp, msg("Self-check a submission before handing it in.")),
        epilog=helps(sp, CHECK_EXIT_CODES),
    )
    p.add_argument(
        "path", nargs="?", default=".", help=helps(sp, msg("your server.py, folder or .zip"))
    )
    p.add_argument("--assignment", "-a", required=True, help=helps(sp, msg("e.g. epoll")))
    add_assignments_option(p, sp)
    p.add_argument(
        "--out",
        "-o",
        default="socketgrade-report",
        help=helps(sp, msg("where report.html goes (default: socketgrade-report)")),
    )
    _add_run_options(p, sp, ("local", "docker", "inplace"))
    terminal.add_lang_option(p, sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = None
    # Read before parsing: the help texts themselves speak the language asked for.
    sp = i18n.speaker(terminal.lang_in(argv))
    try:
        if argv[:1] == ["sandbox"]:
            return cmd_sandbox(argv[1:])
        if argv[:1] == ["assignments"]:
            return cmd_assignments(argv[1:])
        if argv[:1] == ["check"]:
            ns = build_check_parser(sp).parse_args(argv[1:])
            return cmd_check(ns)
        if argv[:1] == ["export"]:
            return cmd_export(argv[1:], sp)
        if argv[:1] == ["report"]:
            ns = build_report_parser(sp).parse_args(argv[1:])
            return cmd_report(ns)
        ns = build_parser(sp).parse_args(argv)
        if ns.jobs < 1:
            raise UsageError(msg("--jobs must be at least 1, not {jobs}", jobs=ns.jobs))
        ns.engines = engines_of(ns.docker_host, ns.jobs, ns.sandbox)
        return cmd_grade(ns)
    except (AssignmentError, DiscoverError, UsageError) as exc:
        terminal.error(exc, sp.lang)
        return 2
    except SandboxError as exc:
        terminal.error(exc, sp.lang)
        return 3


if __name__ == "__main__":
    sys.exit(main())
