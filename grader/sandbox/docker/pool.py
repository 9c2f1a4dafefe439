"""Several Docker engines as one sandbox: each submission takes a free slot on a live engine,
and moves to another engine when its own fails."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import requests

from grader.contract import Message, as_message, join, msg, verbatim
from grader.models import RunOutcome, RunRequest
from grader.sandbox.common import DEFAULT_WALL_CLOCK, SandboxError
from grader.sandbox.docker.container import DEFAULT_LIMITS, DockerLimits
from grader.sandbox.docker.engines import EngineSpec, provide_image
from grader.sandbox.docker.image import connect, short
from grader.sandbox.docker.runner import DockerSandbox, EngineError

# A run that ended without a report through no fault of the submission may be an engine
# shutting down (it stops its containers before it stops answering): the engine counts as
# alive only if it keeps answering this long, pinged once a second.
SETTLE_SECONDS = 3.0
PING_EVERY_SECONDS = 1.0

# What an engine raises when it is gone or failing (not a submission's fault).
ENGINE_FAULTS = (EngineError, docker.errors.DockerException, requests.RequestException, OSError)


@dataclass
class _Engine:
    spec: EngineSpec
    sandbox: DockerSandbox | None = None
    busy: int = 0
    failed: bool = False


def _say_in_english(sentence: Message) -> None:
    print(str(sentence), file=sys.stderr)


class EnginePool:
    """The Docker sandbox spread over several engines, each running at most its own `jobs`
    containers at once. An engine that fails is set aside for the rest of the batch (said
    once through `notify`) and the submission it held is graded on another; only when every
    engine is gone is a submission a grader error."""

    name = "docker"

    def __init__(
        self,
        specs: Sequence[EngineSpec],
        wall_clock: float = DEFAULT_WALL_CLOCK,
        scratch: str | Path | None = None,
        notify: Callable[[Message], None] | None = None,
        limits: DockerLimits = DEFAULT_LIMITS,
    ):
        self.notify = notify or _say_in_english
        self.engines = [_Engine(spec) for spec in specs]
        self.reasons: list[Message] = []
        self._cond = threading.Condition()
        self._stopping = False
        # Engines set aside while starting are said once another engine can grade: when
        # none can, the one error that stops the batch says why for each.
        self._deferred: list[Message] | None = []
        by_url = {e.spec.url: e for e in self.engines}
        ready = provide_image(
            [e.spec.url for e in self.engines],
            progress=self.notify,
            set_aside=lambda url, exc: self._set_aside(by_url[url], exc),
        )
        for url in ready:
            engine = by_url[url]
            try:
                engine.sandbox = DockerSandbox(
                    wall_clock,
                    scratch=scratch,
                    limits=limits,
                    client=connect(url=url),
                    engine=url,
                    engine_faults_raise=True,
                )
            except SandboxError as exc:
                self._set_aside(engine, exc)
        if not any(e.sandbox is not None and not e.failed for e in self.engines):
            raise SandboxError(
                msg(
                    "none of the Docker engines can grade: {why}",
                    why=join(self.reasons, "; "),
                )
            )
        deferred, self._deferred = self._deferred, None
        for sentence in deferred:
            self.notify(sentence)

    @property
    def jobs(self) -> int:
        """How many submissions the engines grade at once, all together."""
        return sum(e.spec.jobs for e in self.engines if not e.failed)

    def describe(self) -> dict:
        live = [e.sandbox for e in self.engines if e.sandbox is not None]
        return live[0].describe() if live else {}

    def run(self, req: RunRequest) -> RunOutcome:
        """Grade one submission on the first free engine; again on another if that one fails."""
        start = time.monotonic()
        failed_on: list[str] = []
        while True:
            engine = self._take()
            if engine is None:
                return self._nowhere(start, failed_on)
            assert engine.sandbox is not None
            try:
                outcome = engine.sandbox.run(req)
                if (
                    outcome.report is None
                    and outcome.error_fault == "infrastructure"
                    and not self._stopping
                    and not self._answers(engine.sandbox)
                ):
                    raise EngineError(outcome.error)
            except ENGINE_FAULTS as exc:
                if self._stopping:  # Ctrl-C removed its container: not the engine's fault
                    return self._nowhere(start, failed_on)
                self._set_aside(engine, exc)
                failed_on.append(engine.spec.url)
                continue
            finally:
                self._give_back(engine)
            if failed_on:
                # For the TA: where it went first, and why it ran again.
                note = f"graded on {engine.spec.url} after {', '.join(failed_on)} failed\n"
                outcome = dataclasses.replace(outcome, log=note + outcome.log)
            return outcome

    def stop_all(self) -> None:
        """Ctrl-C: every engine removes what this process started there."""
        self._stopping = True
        for engine in self.engines:
            if engine.sandbox is not None:
                try:
                    engine.sandbox.stop_all()
                except ENGINE_FAULTS:
                    pass  # a gone engine has nothing left to stop for us
        with self._cond:
            self._cond.notify_all()

    def _take(self) -> _Engine | None:
        """A slot on the live engine with the most of its own free, waiting for one; None
        when every engine is gone."""
        with self._cond:
            while True:
                live = [e for e in self.engines if e.sandbox is not None and not e.failed]
                if not live or self._stopping:
                    return None
                free = [e for e in live if e.busy < e.spec.jobs]
                if free:
                    engine = max(free, key=lambda e: (e.spec.jobs - e.busy) / e.spec.jobs)
                    engine.busy += 1
                    return engine
                self._cond.wait()

    def _give_back(self, engine: _Engine) -> None:
        with self._cond:
            engine.busy -= 1
            self._cond.notify_all()

    def _answers(self, sandbox: DockerSandbox) -> bool:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            try:
                sandbox.client.ping()
            except ENGINE_FAULTS:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(PING_EVERY_SECONDS)

    def _set_aside(self, engine: _Engine, exc: BaseException) -> None:
        """The engine takes no more submissions; said once, with why."""
        if isinstance(exc, SandboxError) and len(exc.args) == 1:
            why = as_message(exc.args[0])
        else:
            why = verbatim(short(str(exc) or type(exc).__name__))
        with self._cond:
            if engine.failed:
                return
            engine.failed = True
            self.reasons.append(msg("{url}: {why}", url=engine.spec.url, why=why))
            self._cond.notify_all()
        sentence = msg(
            "the Docker engine {url} is set aside for the rest of this batch ({why}); the "
            "other engines grade its submissions",
            url=engine.spec.url,
            why=why,
        )
        if self._deferred is not None:
            self._deferred.append(sentence)
        else:
            self.notify(sentence)

    def _nowhere(self, start: float, failed_on: list[str]) -> RunOutcome:
        return RunOutcome(
            None,
            time.monotonic() - start,
            self.name,
            self.describe(),
            error=msg(
                "every Docker engine failed ({engines}): this submission could not be graded, "
                "which is not the student's fault",
                engines=", ".join(e.spec.url for e in self.engines),
            )
            if not self._stopping
            else msg("grading was interrupted (its container was removed)"),
            error_fault="infrastructure",
            engine=failed_on[-1] if failed_on else "",
        )
