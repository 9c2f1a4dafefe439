"""`--docker-host URL[#jobs=N]` (repeatable): the Docker engines `grade` and `grade sandbox`
use, read from the command line without loading the docker SDK until one is named."""

from __future__ import annotations

import argparse

from grader.contract import msg
from grader.i18n import Speaker
from grader.terminal import UsageError, helps


def add_docker_host_option(p: argparse.ArgumentParser, sp: Speaker, grading: bool) -> None:
    p.add_argument(
        "--docker-host",
        action="append",
        default=[],
        metavar="URL[#jobs=N]",
        help=helps(
            sp,
            msg(
                "a Docker engine to grade on (unix://, tcp:// with DOCKER_TLS_VERIFY and "
                "DOCKER_CERT_PATH for TLS, ssh://), with its own parallelism after '#' "
                "(default: --jobs); give it once per engine to spread the submissions over "
                "them (default: DOCKER_HOST, or the local engine)"
            )
            if grading
            else msg(
                "a Docker engine to work on (unix://, tcp://, ssh://); give it once per "
                "engine (default: DOCKER_HOST, or the local engine)"
            ),
        ),
    )


def engines_of(values: list[str], default_jobs: int, sandbox: str = "docker") -> tuple:
    """The EngineSpecs named by `--docker-host`, or UsageError in one sentence."""
    if not values:
        return ()
    if sandbox != "docker":
        raise UsageError(
            msg("--docker-host needs --sandbox docker, not --sandbox {sandbox}", sandbox=sandbox)
        )
    from grader.sandbox.docker.engines import EngineSpecError, parse_engines

    try:
        return parse_engines(values, default_jobs)
    except EngineSpecError as exc:
        raise UsageError(exc.args[0]) from exc
