"""What the command line prints: sentences in the chosen language, the class table, and a
self-check's verdicts."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader import i18n
from grader.contract import as_message, msg
from grader.contract.message import Value
from grader.i18n import Speaker
from grader.models import (
    GRADER_ERROR,
    GRADER_ERROR_LABEL,
    NOT_GRADABLE,
    CheckResult,
    SubmissionResult,
)

console = Console(stderr=True, highlight=False)


class UsageError(Exception):
    """Bad command-line input: one concrete sentence (a Message), exit code 2."""


def error(exc: Exception, lang: str | None) -> None:
    """A command's one-sentence error, `grade: ...`, in each language shown; an error that
    carries a Message is translated, any other is shown as it is."""
    sp = i18n.speaker(lang)
    sentence = exc.args[0] if len(exc.args) == 1 else str(exc)
    for _lang, text in sp.renders(as_message(sentence)):
        print(f"grade: {text}", file=sys.stderr)


# The help texts are the kit's sentences, in the --lang asked for. argparse's own words
# ("usage:", "options:", "positional arguments:", its error messages) stay as Python prints
# them: they come from Python's own gettext domain, which the kit leaves alone.


def lang_in(argv: list[str]) -> str:
    """The language an argv asks for with `--lang X` or `--lang=X`, read before the parser is
    built (its help texts are in that language); else the locale's. A value argparse would
    refuse is left for it to refuse."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = argv[i + 1] if arg == "--lang" and i + 1 < len(argv) else None
        if arg.startswith("--lang="):
            value = arg[len("--lang=") :]
        if value in i18n.LANGS:
            return value
    return i18n.default_lang()


def helps(sp: Speaker, value: Value) -> str:
    """A help text in the languages shown; `both` as "中文 / English" on one line, since argparse
    rewraps a help text and would run two lines into one anyway."""
    return sp.text(value, " / ")


# Characters a terminal shows two columns wide, which may break anywhere (CJK, full-width).
WIDE = "\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
OPENING, CLOSING = "（“《【", "），。；：、”》】！？"
HELP_TOKENS = re.compile(rf"[{WIDE}]|[^\s{WIDE}]+|\s+")


def _columns(tokens: list[str]) -> int:
    return sum(2 * len(t) if re.match(rf"[{WIDE}]", t) else len(t) for t in tokens)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, wrapping Chinese too: argparse breaks lines only at spaces and
    counts characters, while Chinese has no spaces and each character takes two columns."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        lines: list[list[str]] = []
        line: list[str] = []
        for token in HELP_TOKENS.findall(" ".join(text.split())):
            if token.isspace() and not line:
                continue
            if line and not token.isspace() and _columns(line) + _columns([token]) > width:
                # As Chinese is set: no line ends on an opening bracket, and none starts with
                # a closing mark; the word before it goes down with it.
                cut = len(line) - 1 if token in CLOSING or line[-1] in OPENING else len(line)
                while token in CLOSING and 0 < cut and line[cut] in CLOSING:
                    cut -= 1
                while 0 < cut and line[cut - 1] in OPENING:
                    cut -= 1
                cut = cut or len(line)  # one long run of marks: break it anyway
                lines.append(line[:cut])
                line = line[cut:]
            line.append(token)
        return ["".join(words).rstrip() for words in [*lines, line] if "".join(words).strip()]

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in self._split_lines(text, width))


def add_lang_option(p: argparse.ArgumentParser, sp: Speaker) -> None:
    p.add_argument(
        "--lang",
        choices=i18n.LANGS,
        default=None,
        help=helps(
            sp,
            msg(
                "language of the reports and the terminal: zh, en, or both (Chinese, then "
                "English); default: from the locale (LC_ALL, LC_MESSAGES, LANG), both when it "
                "names neither"
            ),
        ),
    )


# A check's verdict at the head of its line.
PASS, FAIL = msg("PASS"), msg("FAIL")
GRADING = msg("grading")  # the progress bar's label


def token(sp: Speaker, value: Value) -> str:
    """A verdict's word at the head of a line (PASS, FAIL, GRADER ERROR): in Chinese for
    `zh`, else in English, once, so that the columns stay aligned; the sentences under it
    come in every language shown."""
    return sp.render(value, "zh" if sp.lang == "zh" else "en")


# Where a check's why, hint and observations start, under its PASS/FAIL line.
INDENT = " " * 6


def say(sp: Speaker, value: Value, style: str = "", indent: str = "") -> None:
    """One sentence on the terminal, in each language shown (Chinese first for `both`); as
    text, never markup: reasons quote the students' and the sandbox's words."""
    for _lang, text in sp.renders(value):
        console.print(Text(indent + text, style=style), soft_wrap=True)


def summary(results: list[SubmissionResult], sp: Speaker) -> None:
    """The class table on the terminal: each student's score and failed checks."""
    table = Table(title="socketgrade", show_lines=False)
    table.add_column(sp.text(msg("student"), " / "))
    table.add_column(sp.text(msg("score"), " / "), justify="right")
    table.add_column(sp.text(msg("failed checks"), " / "))
    for r in results:
        # Text, not markup: ids and reasons are the students' and the sandbox's words.
        failed = ", ".join(c.spec.id for c in r.checks if c.status == "failed")
        if r.status == GRADER_ERROR:
            errors = r.grader_errors
            reason = errors[0].reason
            why = (
                msg("could not be graded: {reason}", reason=reason)
                if len(errors) == len(r.checks)
                else msg(
                    "could not be graded ({ids}): {reason}",
                    ids=", ".join(c.spec.id for c in errors),
                    reason=reason,
                )
            )
            score_cell = Text(token(sp, GRADER_ERROR_LABEL), style="yellow")
            detail = Text(sp.text(why), style="yellow")
            if failed:
                detail.append(sp.text(msg("; failed: {ids}", ids=failed)), style="default")
        elif r.status == NOT_GRADABLE:
            score_cell = Text(f"{r.score:g}/{r.max_score:g}")
            detail = Text(sp.text(msg("not gradable: {problem}", problem=r.submission.problem)))
        else:
            score_cell, detail = Text(f"{r.score:g}/{r.max_score:g}"), Text(failed or "—")
        table.add_row(Text(r.submission.id), score_cell, detail)
    console.print(table)


def _check_lines(c: CheckResult, sp: Speaker) -> None:
    """Under a check's PASS/FAIL line: what it saw (an informational check), why it failed
    and the hint, each in the languages shown."""
    if not c.spec.points:  # an informational check: what it showed is the point
        for line in [x for x in c.story if x.kind == "saw"][-2:]:
            say(sp, msg("saw:  {line}", line=line.text), indent=INDENT)
    if not c.passed:
        say(sp, msg("why:  {reason}", reason=c.reason), indent=INDENT)
    # Not after a grader error: a student hint would send them fixing what works.
    if not c.passed and not c.grader_error and c.hint_applies and c.spec.hint.en:
        hint = c.spec.hint
        shown: list[str] = []
        for lang in sp.langs:
            text = (hint.zh or hint.en) if lang == "zh" else hint.en
            said = INDENT + sp.render(msg("hint: {hint}", hint=text), lang)
            if said not in shown:
                shown.append(said)
                console.print(Text(said), soft_wrap=True)


def check_outcome(result: SubmissionResult, report: Path, sp: Speaker) -> None:
    """A self-check on the terminal: each check with its verdict, why and hint, then the
    verdict on the whole."""
    for c in result.checks:
        mark = {
            "passed": Text(token(sp, PASS), style="green"),
            "failed": Text(token(sp, FAIL), style="red"),
        }.get(c.status, Text(token(sp, GRADER_ERROR_LABEL), style="yellow"))
        # A check that was not judged has no score, not a 0.
        got = "–" if c.grader_error else f"{c.score:g}"
        title = sp.pick(c.spec.title.en, c.spec.title.zh, " / ")
        console.print(
            Text.assemble(mark, f" {c.spec.id:<14} {got}/{c.spec.points:g}  {title}"),
            soft_wrap=True,
        )
        _check_lines(c, sp)
    errors = result.grader_errors
    ok = all(c.passed for c in result.checks)
    if errors:
        judged = result.max_score - sum(c.spec.points for c in errors)
        verdict = msg(
            "{label}: the grader could not check {errors} of {total} checks, through no "
            "fault of your code (run it again; if it stays, tell your TA); the checks it "
            "could judge: {score}/{judged}",
            label=GRADER_ERROR_LABEL,
            errors=len(errors),
            total=len(result.checks),
            score=f"{result.score:g}",
            judged=f"{judged:g}",
        )
    elif ok:
        verdict = msg(
            "all visible checks pass: {score}/{max}",
            score=f"{result.score:g}",
            max=f"{result.max_score:g}",
        )
    else:
        verdict = msg(
            "some checks fail: {score}/{max}",
            score=f"{result.score:g}",
            max=f"{result.max_score:g}",
        )
    say(
        sp,
        msg(
            "{verdict} in {seconds:.1f} s ({sandbox} sandbox). Report: {report}",
            verdict=verdict,
            seconds=result.execution_time,
            sandbox=result.sandbox,
            report=str(report),
        ),
        "yellow" if errors else "",
    )
    if result.sandbox == "local":
        say(sp, msg("note: the local sandbox does not isolate; your server ran as you."))
