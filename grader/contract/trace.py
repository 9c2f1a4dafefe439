"""The tracer's vocabulary: the event kinds it writes (TraceKind), one event as read back."""

# The tracer (harness/boot.py and harness/tracehooks.py) runs in the student's interpreter and
# imports nothing of the kit; a test holds its event strings to TraceKind.

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TraceKind(StrEnum):
    """Every event kind the tracer writes (its `ev` field)."""

    START = "start"  # the entry file is about to run
    BIND = "bind"  # fd, requested (host, port)
    LISTEN = "listen"  # fd, backlog
    REGISTER = "register"  # fd, events, selector (its class or mechanism)
    UNREGISTER = "unregister"  # fd
    MODIFY = "modify"  # fd, events, selector
    CLOSE = "close"  # fd
    CLOSE_REGISTERED = "close_registered"  # fd, registered_at: closed while still registered
    SELECTOR_NEW = "selector_new"  # selector: a selectors.* object was made
    SELECT = "select"  # timeout, selector: a selectors.* select() call
    SELECTOR_CLOSE = "selector_close"  # selector
    SELECT_CALL = "select_call"  # timeout (s): a plain select.select() call
    POLL_NEW = "poll_new"  # a select.poll() object was made
    POLL_REGISTER = "poll_register"  # fd, events
    POLL_UNREGISTER = "poll_unregister"  # fd
    POLL_MODIFY = "poll_modify"  # fd, events
    POLL_WAIT = "poll_wait"  # timeout (ms; None or negative: no timeout)
    EPOLL_NEW = "epoll_new"  # epfd: a select.epoll() object was made
    EPOLL_REGISTER = "epoll_register"  # fd, events, epfd
    EPOLL_UNREGISTER = "epoll_unregister"  # fd, epfd
    EPOLL_MODIFY = "epoll_modify"  # fd, events, epfd
    EPOLL_WAIT = "epoll_wait"  # timeout (s; None or negative: no timeout), epfd
    EPOLL_CLOSE = "epoll_close"  # epfd
    BLOCKING_CALL = "blocking_call"  # call, fd: accept/recv on a blocking socket
    SETBLOCKING = "setblocking"  # fd, flag
    SETTIMEOUT = "settimeout"  # fd, value
    THREAD = "thread"  # name
    FORK = "fork"
    CRASH = "crash"  # type, message
    EXIT = "exit"  # code
    TRACER_ERROR = "tracer_error"  # error: the tracer could not be installed

    @classmethod
    def of(cls, value: object) -> TraceKind | None:
        try:
            return cls(value) if isinstance(value, str) else None
        except ValueError:
            return None


# A wait whose timeout is at most this many seconds returns at once: in a loop, it never
# sleeps (select(timeout=0) is the tutorial's busy-loop mistake; 1 ms is below any tick).
BUSY_TIMEOUT = 0.001
# The waits, and the unit of their timeout in seconds (select.poll's poll() counts in ms).
WAIT_SECONDS_PER_UNIT = {
    TraceKind.SELECT: 1.0,
    TraceKind.SELECT_CALL: 1.0,
    TraceKind.POLL_WAIT: 0.001,
    TraceKind.EPOLL_WAIT: 1.0,
}


@dataclass(frozen=True)
class TraceEvent:
    """One tracer event. The student's process wrote it: its fields explain, never decide."""

    kind: str  # a TraceKind value, or what an unknown tracer wrote
    at: str | None = None  # the student's line, as "server.py:16"
    t: float | None = None  # the tracer's monotonic clock
    fields: Mapping[str, Any] = field(default_factory=dict)  # the rest (fd, timeout, ...)

    @property
    def known(self) -> TraceKind | None:
        return TraceKind.of(self.kind)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def fd(self) -> Any:
        return self.fields.get("fd")

    @property
    def never_sleeps(self) -> bool:
        """A wait (select, poll) that returns at once."""
        timeout = self.fields.get("timeout")
        seconds = WAIT_SECONDS_PER_UNIT.get(self.known) if self.known is not None else None
        # A negative timeout means "no timeout" to poll() and epoll.poll(): it sleeps.
        return (
            seconds is not None
            and isinstance(timeout, (int, float))
            and not isinstance(timeout, bool)
            and 0 <= timeout * seconds <= BUSY_TIMEOUT
        )

    def to_json(self) -> dict:
        out = dict(self.fields)
        if self.at is not None:
            out["at"] = self.at
        out["ev"] = self.kind
        if self.t is not None:
            out["t"] = self.t
        return out

    @classmethod
    def from_json(cls, data: object) -> TraceEvent:
        if not isinstance(data, dict):
            return cls(kind="", fields={"value": data})
        rest = {str(k): v for k, v in data.items() if k not in ("ev", "at", "t")}
        at = data.get("at")
        return cls(
            kind=str(data.get("ev", "")),
            at=at if isinstance(at, str) else None,
            t=finite_number(data.get("t")),
            fields=rest,
        )


# The events a report explains failures with (the harness keeps these, at most TRACE_KEPT).
EXPLAINING = frozenset(
    {
        TraceKind.BIND,
        TraceKind.LISTEN,
        TraceKind.CLOSE_REGISTERED,
        TraceKind.THREAD,
        TraceKind.FORK,
        TraceKind.SELECT,
        TraceKind.SELECT_CALL,
        TraceKind.POLL_WAIT,
        TraceKind.EPOLL_WAIT,
        TraceKind.BLOCKING_CALL,
        TraceKind.CRASH,
        TraceKind.SETBLOCKING,
        TraceKind.SETTIMEOUT,
        TraceKind.TRACER_ERROR,
        TraceKind.EXIT,
    }
)
TRACE_KEPT = 200


def finite_number(value: object) -> float | None:
    """A JSON number that is a real, finite one (not a bool, not NaN); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None
