"""Several Docker engines: `URL#jobs=N` specs, and the grading image brought to each of them."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import docker
import requests
from docker.utils import parse_host

from grader.contract import Message, msg
from grader.sandbox.common import SandboxError
from grader.sandbox.docker.image import (
    BUILD_TIMEOUT_SECONDS,
    IMAGE,
    build_image,
    connect,
    image_state,
    short,
)

# `#jobs=N` after the URL: that engine's own parallelism.
JOBS_FRAGMENT = re.compile(r"jobs=([0-9]+)")
# The image travels from one engine to the next in pieces of this size: never whole in memory.
CHUNK_BYTES = 2**20


class EngineSpecError(ValueError):
    """A `--docker-host` value the kit cannot use: one sentence (a Message) saying why."""


@dataclass(frozen=True)
class EngineSpec:
    """One engine named on the command line: its URL as the Docker SDK takes it, and how
    many submissions it grades at once."""

    url: str
    jobs: int


def parse_engine(value: str, default_jobs: int) -> EngineSpec:
    """`unix:///run/docker.sock`, `tcp://host:2376#jobs=4`, `ssh://user@host`: an EngineSpec,
    or EngineSpecError saying what is wrong with `value`."""
    url, hashed, fragment = value.partition("#")
    jobs = default_jobs
    if hashed:
        found = JOBS_FRAGMENT.fullmatch(fragment)
        if not found or int(found.group(1)) < 1:
            raise EngineSpecError(
                msg(
                    "--docker-host {value}: after '#' give the engine's parallelism as jobs=N "
                    "with N at least 1 (e.g. {example})",
                    value=repr(value),
                    example=f"{url}#jobs=4",
                )
            )
        jobs = int(found.group(1))
    try:
        if not url.strip():
            raise docker.errors.DockerException("empty")
        parse_host(url, tls=False)
    except docker.errors.DockerException as exc:
        raise EngineSpecError(
            msg(
                "--docker-host {value} is not a Docker engine's URL: give one such as "
                "unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST",
                value=repr(value),
            )
        ) from exc
    return EngineSpec(url, jobs)


def parse_engines(values: Sequence[str], default_jobs: int) -> tuple[EngineSpec, ...]:
    """Every `--docker-host`, each URL once."""
    specs = tuple(parse_engine(v, default_jobs) for v in values)
    seen: set[str] = set()
    for spec in specs:
        if spec.url in seen:
            raise EngineSpecError(
                msg("--docker-host {url} is given twice: name each engine once", url=spec.url)
            )
        seen.add(spec.url)
    return specs


def _architecture(client: docker.DockerClient) -> str:
    return str(client.info().get("Architecture") or "")


def copy_image(
    source: docker.DockerClient, target: docker.DockerClient, image: str = IMAGE
) -> None:
    """`docker save` on one engine streamed into `docker load` on another, piece by piece."""
    chunks = source.api.get_image(image, chunk_size=CHUNK_BYTES)
    for answer in target.api.load_image(chunks, quiet=True) or ():
        if isinstance(answer, dict) and answer.get("error"):
            raise docker.errors.APIError(answer["error"])


def provide_image(
    urls: Sequence[str],
    progress: Callable[[Message], None],
    offline: bool | None = None,
    build: bool = False,
    set_aside: Callable[[str, SandboxError], None] | None = None,
) -> list[str]:
    """The up-to-date grading image on every engine at `urls`: loaded from an engine (of the
    same architecture) that has it, else built on one of them (only when `build`; otherwise
    the engine says to run `grade sandbox build`) and loaded into the others. Returns the
    engines that have it. An engine that fails raises SandboxError, or with `set_aside` is
    handed to it and left out."""
    clients: dict[str, docker.DockerClient] = {}
    ready: list[str] = []
    lacking: list[tuple[str, str]] = []  # (url, architecture)
    try:
        for url in urls:
            try:
                clients[url] = client = connect(timeout=BUILD_TIMEOUT_SECONDS, url=url)
                if image_state(client)[0] == "ok":
                    ready.append(url)
                else:
                    lacking.append((url, _architecture(client)))
            except (SandboxError, docker.errors.DockerException, requests.RequestException) as e:
                _failed(url, e, set_aside)
        for url, arch in lacking:
            try:
                _provide_one(clients, ready, url, arch, progress, offline, build)
                ready.append(url)
            except SandboxError as exc:
                _failed(url, exc, set_aside)
    finally:
        for c in clients.values():
            c.close()
    return [u for u in urls if u in ready]


def _failed(url: str, exc: Exception, set_aside) -> None:
    error = exc if isinstance(exc, SandboxError) else SandboxError(_engine_failed(url, exc))
    if set_aside is None:
        raise error from exc
    set_aside(url, error)


def _engine_failed(url: str, exc: Exception) -> Message:
    return msg("the Docker engine at {url} failed: {error}", url=url, error=short(str(exc)))


def _provide_one(clients, ready, url, arch, progress, offline, build) -> None:
    source = next((u for u in ready if _architecture(clients[u]) == arch), None)
    if source is None:
        if not build:
            raise SandboxError(
                msg(
                    "the grading image {image} is missing or stale on {url} and no engine of "
                    "its architecture has it up to date: run `grade sandbox build "
                    "--docker-host {url}`",
                    image=IMAGE,
                    url=url,
                )
            )
        build_image(offline=offline, progress=progress, url=url)
        return
    progress(
        msg("loading {image} into {target} from {source}", image=IMAGE, target=url, source=source)
    )
    try:
        copy_image(clients[source], clients[url])
        fresh = image_state(clients[url])[0] == "ok"
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise SandboxError(
            msg(
                "the grading image {image} could not be loaded into {url} ({error}): run "
                "`grade sandbox build --docker-host {url}`",
                image=IMAGE,
                url=url,
                error=short(str(exc)),
            )
        ) from exc
    if not fresh:
        raise SandboxError(
            msg(
                "the grading image {image} loaded into {url} is not up to date: run `grade "
                "sandbox build --docker-host {url}`",
                image=IMAGE,
                url=url,
            )
        )
