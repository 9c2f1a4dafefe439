"""`grade sandbox build|status`: the command line of the Docker grading image."""

from __future__ import annotations

import argparse
import signal
import sys

from grader import i18n
from grader.cli_docker import add_docker_host_option, engines_of
from grader.contract import as_message, msg
from grader.contract.message import Value
from grader.i18n import Speaker
from grader.sandbox.common import SandboxError
from grader.sandbox.docker.engines import provide_image
from grader.sandbox.docker.image import (
    BUILD_TIMEOUT_SECONDS,
    IMAGE,
    ONLINE_BASE,
    build_image,
    connect,
    image_status_message,
)
from grader.terminal import HelpFormatter, UsageError, add_lang_option, helps, lang_in

# Ctrl-C's exit code, as a shell reports a process that SIGINT ended.
INTERRUPTED = 128 + signal.SIGINT


def build_parser(sp: Speaker) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        formatter_class=HelpFormatter,
        prog="grade sandbox",
        description=helps(sp, msg("The Docker image submissions are graded in.")),
    )
    add_lang_option(parser, sp)
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser(
        "build", formatter_class=HelpFormatter, help=helps(sp, msg("build {image}", image=IMAGE))
    )
    how = build.add_mutually_exclusive_group()
    how.add_argument(
        "--offline",
        action="store_true",
        help=helps(sp, msg("build on a Debian base made with debootstrap (no registry needed)")),
    )
    how.add_argument(
        "--online",
        action="store_true",
        help=helps(
            sp, msg("build on {base} (pulled from the registry if missing)", base=ONLINE_BASE)
        ),
    )
    # `grade sandbox build --lang zh` as well as `grade sandbox --lang zh build`.
    add_lang_option(build, sp)
    add_docker_host_option(build, sp, grading=False)
    status = sub.add_parser(
        "status",
        formatter_class=HelpFormatter,
        help=helps(sp, msg("say whether {image} is present and up to date", image=IMAGE)),
    )
    add_lang_option(status, sp)
    add_docker_host_option(status, sp, grading=False)
    return parser


def _say(sp: Speaker, value: Value, file=None, prefix: str = "") -> None:
    """A sentence in each language shown; on stdout unless `file` says otherwise."""
    for _lang, text in sp.renders(as_message(value)):
        print(prefix + text, file=file or sys.stdout)


def cli_sandbox(argv: list[str]) -> int:
    """`grade sandbox build [--offline|--online]` and `grade sandbox status`, on the local
    engine or on each `--docker-host`."""
    sp = i18n.speaker(lang_in(argv))
    ns = build_parser(sp).parse_args(argv)
    try:
        urls = [e.url for e in engines_of(ns.docker_host, 1)]
        if ns.action == "build":
            offline = True if ns.offline else (False if ns.online else None)
            # The kit's own steps in the language asked for; Docker's output as it words it.
            if urls:
                provide_image(
                    urls, progress=lambda line: _say(sp, line), offline=offline, build=True
                )
                return _statuses(sp, urls)
            build_image(offline=offline, progress=lambda line: _say(sp, line))
            return 0
        if urls:
            return _statuses(sp, urls)
        status = image_status_message()
        _say(sp, status)
        return 0 if " up to date " in str(status) else 1
    except UsageError as exc:
        _say(sp, exc.args[0], sys.stderr, "grade sandbox: ")
        return 2
    except SandboxError as exc:
        sentence = exc.args[0] if len(exc.args) == 1 else str(exc)
        _say(sp, sentence, sys.stderr, "grade sandbox: ")
        return 1
    except KeyboardInterrupt:
        _say(sp, msg("interrupted"), sys.stderr, "grade sandbox: ")
        return INTERRUPTED


def _statuses(sp: Speaker, urls: list[str]) -> int:
    """One line per engine, `URL: sentence`; 0 only if the image is up to date on each."""
    fresh = True
    for url in urls:
        try:
            client = connect(timeout=BUILD_TIMEOUT_SECONDS, url=url)
            try:
                status = image_status_message(client)
            finally:
                client.close()
        except SandboxError as exc:
            status = as_message(exc.args[0] if len(exc.args) == 1 else str(exc))
        fresh = fresh and " up to date " in str(status)
        _say(sp, msg("{url}: {why}", url=url, why=status))
    return 0 if fresh else 1
